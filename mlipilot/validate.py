"""`mlipilot validate`: choose models (the best, every accepted one, or one trial), validate each
as a job (local or Slurm, one per model; finished validations are not redone, a killed one resumes
at its next check), and record the result in three places: the store (`trials/<n>/validation.json`),
the ledger (a `validation` event) and git (a note on the trial's commit under
refs/notes/mlipilot-validation that `mlipilot log` shows)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import git

from mlipilot import jobs
from mlipilot.errors import MLIPilotError
from mlipilot.executors.base import submitting_from
from mlipilot.git_history import harden_git_environment, write_validation_note
from mlipilot.integrity import VALIDATION_SPEC, load_seal, sha256_file
from mlipilot.ledger import Ledger
from mlipilot.records import FailureKind, TrialRecord, TrialStatus, ValidationEvent
from mlipilot.registry import load_dotted
from mlipilot.run_config import RunConfig
from mlipilot.run_lock import run_lock
from mlipilot.store import HOLDOUT_FILE, Store
from mlipilot.validation.runner import table
from mlipilot.validation.spec import load_validation_spec

EXTRA = "validation_frames.xyz"  # labelled frames beyond the holdout (e.g. larger molecules), in the store


RESEALED_SPEC = "validation.resealed.yaml"  # a spec sealed after init (`validate --reseal-spec`); the one sealed at
RESEAL_RECORD = "validation.resealed.json"  # init stays as it was, so the store's seal (trials check it) holds
RESEAL_FIX = "run `mlipilot validate --reseal-spec` to seal the benchmark's current spec into the run's store"


def spec_path(cfg: RunConfig, reseal: bool = False, progress: Callable[[str], None] = print) -> tuple[Path, str]:
    """The run's private validation spec and the sha256 it was sealed with: the copy sealed at init, or the
    one `--reseal-spec` sealed later. A spec that is neither (added after init, or edited) is refused."""
    from mlipilot.benchmark import resolve_benchmark

    record = cfg.store / RESEAL_RECORD
    if reseal:
        bench = check_new_spec(cfg, progress)  # every problem of it at once; its MD winnable; before anything is sealed
        shutil.copy(bench.validation, cfg.store / RESEALED_SPEC)
        sha = sha256_file(cfg.store / RESEALED_SPEC)
        record.write_text(json.dumps({"sha256": sha, "source": str(bench.validation), "time": time.time()}))
        progress(f"validation spec {bench.validation} sealed into {cfg.store / RESEALED_SPEC} (sha256 {sha[:12]})")
    if record.is_file():
        path, sha = cfg.store / RESEALED_SPEC, json.loads(record.read_text())["sha256"]
    else:
        path, sha = cfg.store / VALIDATION_SPEC, load_seal(cfg.store)["files"].get(VALIDATION_SPEC)
        if sha is None:  # no spec at init: the benchmark's may have been added since — never used unsealed
            bench = resolve_benchmark(cfg.benchmark)
            if bench.validation is None:
                raise MLIPilotError(f"{bench.spec_file}: field 'validation': none given — write a validation spec "
                                    "(see scorecards/cu_emt.validation.yaml), name it there, then " + RESEAL_FIX)
            raise MLIPilotError(f"{bench.validation}: validation spec added after `mlipilot init`, so not sealed "
                                f"with the run — {RESEAL_FIX}")
    load_validation_spec(path)  # a typo fails here, before any job
    if sha256_file(path) != sha:
        raise MLIPilotError(f"{path}: changed since it was sealed — restore it, or {RESEAL_FIX}")
    try:  # the benchmark's spec edited (or named) after the run sealed its own: never ignored without a word
        named = resolve_benchmark(cfg.benchmark).validation
    except MLIPilotError:
        named = None  # the benchmark folder moved: the sealed spec is all there is
    if named is not None and sha256_file(named) != sha:
        raise MLIPilotError(f"{named}: differs from the validation spec this run sealed ({path.name}) — "
                            f"restore it to validate with the sealed one, or {RESEAL_FIX}")
    return path, sha


def check_new_spec(cfg: RunConfig, progress: Callable[[str], None] = print):
    """`--reseal-spec`: the benchmark's validation spec checked as init checks one — every problem of
    benchmark.yaml and the spec in one pass (typos, checks whose structures the run's holdout lacks), then,
    only when those pass, its MD briefly with the scorecard's reference (a check no model can pass is refused)."""
    from ase.io import read

    from mlipilot.benchmark import Problems, load_collecting, resolve_benchmark
    from mlipilot.datacheck import validation_problems
    from mlipilot.reference_check import check_reference
    from mlipilot.resources import cache_dir
    from mlipilot.scorecard.evaluate import MD_STRUCTURES, md_start_frames
    from mlipilot.scorecard.spec import load_spec

    problems = Problems()
    bench = problems.attempt(resolve_benchmark, cfg.benchmark, problems)
    if bench is not None and bench.validation is None:
        problems.add(f"{bench.spec_file}: field 'validation': none given — write a validation spec "
                     "(see scorecards/cu_emt.validation.yaml) and name it there")
    problems.raise_if_any("validate --reseal-spec")
    vspec = load_collecting(bench.validation, load_validation_spec, problems)
    store = Store(cfg.store)
    holdout = read(store.holdout, index=":", format="extxyz") if store.holdout.is_file() else []
    starts = md_start_frames(holdout, cfg.store / MD_STRUCTURES)
    if vspec is not None and holdout:
        for line in validation_problems(vspec, holdout, starts):
            problems.add(line, bench.validation)
    problems.raise_if_any("validate --reseal-spec")
    if holdout:
        check_reference(load_spec(store.scorecard), starts, bench.validation, progress=progress, cache=cache_dir())
    return bench


def _picked_atoms(frames: list, params: dict) -> list[int]:
    from mlipilot.scorecard.spec import StructurePick
    from mlipilot.scorecard.structure_stability import pick_structures

    globs = params.get("config_types", ["*"])
    pick = StructurePick(tuple([globs] if isinstance(globs, str) else globs), int(params.get("per_config_type", 1)),
                         int(params.get("max_structures", 3)), int(params.get("min_atoms", 0)))
    return [len(a) for a in pick_structures(frames, pick)]


def check_sizes(vspec, holdout: list, md: list) -> dict[str, tuple[float, bool]]:
    """Per check: (MD atom-steps, whether it runs side by side with the other MD checks). Static checks (equations
    of state, elastic constants, errors) count as a few dozen single points."""
    from mlipilot.validation.checks import CHECK_KINDS

    out = {}
    for check in vspec.checks:
        p, kind = dict(check.params), CHECK_KINDS[check.kind]
        cell = 4 * int(p.get("supercell", 3)) ** 3
        steps = int(p.get("steps", 0)) + int(p.get("equilibrate_steps", 0))
        if check.kind == "structure_md":
            n = sum(_picked_atoms(md, p)) * steps
        elif check.kind == "structure_rdf":
            n = 2 * sum(_picked_atoms(md, p)) * steps  # the reference's own MD as well
        elif check.kind in ("long_md", "rdf", "nve_drift"):
            temps = p.get("temperatures_K") or [None]
            n = cell * steps * max(1, len(temps)) * (2 if check.kind == "rdf" else 1)
        elif check.kind == "molecular_md":
            sizes = sorted((len(f) for f in holdout), reverse=True)[:int(p.get("molecules", 4))]
            n = sum(sizes) * steps
        else:
            picked = _picked_atoms(holdout, p) if "config_types" in p else [cell]
            n = 30 * sum(picked or [cell])
        out[check.name] = (float(n), kind.forkable)
    return out


JOB_START_S = 15.0  # the validation job's imports (torch, mace-torch) and the model's rebuild


def estimate_seconds(sizes: dict[str, tuple[float, bool]], us_per_atom_step: float, cores: int) -> float:
    """Wall seconds: the static checks one after another, then the MD checks side by side on `cores`."""
    seconds = {name: n * us_per_atom_step * 1e-6 for name, (n, _) in sizes.items()}
    forked = [seconds[k] for k, (_, f) in sizes.items() if f]
    static = sum(seconds[k] for k, (_, f) in sizes.items() if not f)
    if cores <= 1 or len(forked) <= 1:
        return static + sum(forked)
    return static + max(max(forked), sum(forked) / cores)


def _estimate_line(row: TrialRecord, spec: Path, store: Store) -> tuple[str, float | None]:
    """The line `validate` prints before a validation starts, and its estimate (s): the checks' MD atom-steps at
    the trial's own measured CPU µs per atom-step, against the trial's train+score time."""
    from ase.io import read

    from mlipilot.md.pool import job_cores
    from mlipilot.scorecard.evaluate import MD_STRUCTURES, md_start_frames

    m = row.metrics or {}
    rate = m.get("us_per_atom_step")  # CPU time; the wall-clock rate of the same timing holds the machine's load
    if all(isinstance(m.get(k), (int, float)) and m[k] > 0 for k in ("steps_per_second", "throughput_atoms")):
        rate = 1e6 / (m["steps_per_second"] * m["throughput_atoms"])
    if not isinstance(rate, (int, float)) or not rate > 0:
        return f"trial {row.trial}: no estimate of the validation's time (the trial measured no MD speed)", None
    try:
        holdout = read(store.holdout, index=":", format="extxyz")
        sizes = check_sizes(load_validation_spec(spec), holdout, md_start_frames(holdout, store.root / MD_STRUCTURES))
    except Exception as e:  # noqa: BLE001 -- an estimate never stops a validation
        return f"trial {row.trial}: no estimate of the validation's time ({type(e).__name__})", None
    cores = job_cores()
    est = JOB_START_S + estimate_seconds(sizes, float(rate), cores)
    wall = row.wall or {}
    trial_s = sum(float(wall.get(k) or 0) for k in ("train", "score"))
    than = f", ≈ {est / trial_s:.1f}× the trial's train+score ({trial_s:.0f} s)" if trial_s > 0 else ""
    return (f"trial {row.trial}: validation estimate ≈ {_minutes(est)} on {cores} core(s) "
            f"({sum(n for n, _ in sizes.values()):.3g} MD atom-steps at the trial's {rate:.3g} µs/atom/step of MD, "
            f"wall clock{than}; shorter when the model fails early)"), est


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def timing_line(summary: dict) -> str:
    """The table's last line with wall time and the checks' summed time apart (MD checks run side by side,
    so their times add up to more than the wall time)."""
    verdict = "PASSED" if summary["passed"] else "FAILED: " + ", ".join(summary["failed_checks"])
    checks = float(summary.get("seconds") or 0)
    wall = summary.get("wall_seconds")
    if wall is None:
        return f"validation {verdict}; the checks' own times add up to {checks:.0f} s"
    est = summary.get("estimate_seconds")
    return (f"validation {verdict} in {wall:.0f} s wall time (estimated {est:.0f} s); " if est is not None else
            f"validation {verdict} in {wall:.0f} s wall time; ") + \
        f"the checks' own times add up to {checks:.0f} s (MD checks run side by side)"


def shown_table(summary: dict) -> str:
    lines = table(summary).splitlines()
    if lines and lines[-1].startswith("validation "):
        lines[-1] = timing_line(summary)
    return "\n".join(lines)


def extra_frames(cfg: RunConfig) -> Path | None:
    """Frames a benchmark's data generator offers for validation beyond the holdout (cached in the store)."""
    path = cfg.store / EXTRA
    if path.is_file():
        return path
    from ase.io import read, write

    from mlipilot.benchmark import resolve_benchmark

    bench = resolve_benchmark(cfg.benchmark)
    module = bench.data.get("generator")
    fn = getattr(load_dotted(module), "validation_frames", None) if module else None
    if fn is None:
        return None
    frames = fn(read(cfg.root / "data" / "train.xyz", index=":", format="extxyz"))
    if not frames:
        return None
    write(path, frames, format="extxyz")
    return path


PROGRESS = "progress.log"  # the job's progress lines, in trials/<n>/validate/, shown while it runs


class _LogTail:
    """Called at each poll of the job: prints the lines the job appended to its progress log since the
    last call, so a validation that takes minutes says which check it is on."""

    def __init__(self, path: Path, progress: Callable[[str], None]):
        self.path, self.progress, self.offset, self.count = path, progress, 0, 0

    def __call__(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line being written waits for the next poll
        self.offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self.count += 1
            self.progress(line)


def select(ledger: Ledger, trial: int | None, accepted: bool) -> list[TrialRecord]:
    scored = [t for t in ledger.latest() if t.metrics and t.status == TrialStatus.FINISHED]
    if trial is not None:
        rows = [t for t in scored if t.trial == trial]
        if not rows:
            raise MLIPilotError(f"--trial {trial}: no scored trial {trial} in {ledger.path} — see `mlipilot status`")
        return rows
    if accepted:
        rows = [t for t in scored if t.accepted]
    else:
        best = ledger.incumbent()
        rows = [best] if best and best.metrics else []
    if not rows:
        raise MLIPilotError(f"{ledger.path}: no accepted, scored trial yet — run `mlipilot trial` first")
    return rows


def _running_job(folder: Path, progress: Callable[[str], None], n: int):
    """A validation job of this trial still running on this host (its launcher was stopped), re-attached."""
    from mlipilot.executors.local import attached_job, live_controllers

    live = live_controllers(folder)
    if not live:
        return None
    pid = max(live)
    progress(f"trial {n}: re-attaching to validation job {pid} of a stopped launcher")
    return attached_job(folder, str(pid))


def validate_run(cfg: RunConfig, trial: int | None = None, accepted: bool = False, executor: str | None = None,
                 timeout_min: float = 30.0, progress: Callable[[str], None] = print, reseal: bool = False) -> list[dict]:
    with run_lock(cfg.store):
        return _validate_run(cfg, trial, accepted, executor, timeout_min, progress, reseal)


def _validate_run(cfg: RunConfig, trial: int | None, accepted: bool, executor: str | None,
                  timeout_min: float, progress: Callable[[str], None], reseal: bool) -> list[dict]:
    harden_git_environment()
    store = Store(cfg.store)
    ledger = store.ledger
    if problem := ledger.verify():
        raise MLIPilotError(problem)
    spec, spec_sealed = spec_path(cfg, reseal, progress)  # unsealed or a typo: fails here, before anything else
    rows = select(ledger, trial, accepted)
    extra = extra_frames(cfg)
    executor = executor or cfg.executor
    repo = git.Repo(cfg.root)
    # the job refuses files that differ from their hash sealed at init (the spec: or by --reseal-spec)
    sealed = load_seal(cfg.store)["files"]
    expected = {"validation": spec_sealed, **({"holdout": sealed[HOLDOUT_FILE]} if HOLDOUT_FILE in sealed else {})}
    spec_sha = sha256_file(spec)  # = the spec's sha256 recorded in each validation.json
    summaries = []
    for row in rows:
        n, trial_dir = row.trial, Path(row.trial_dir)
        out = trial_dir / "validation.json"
        if out.is_file() and json.loads(out.read_text()).get("spec_sha256") == spec_sha:
            summary = json.loads(out.read_text())
            progress(f"trial {n}: validated earlier ({out})")
        else:
            model = trial_dir / jobs.MODEL_DIR
            if not model.is_dir() and not model.is_symlink():  # trials scored before the copy existed
                model = trial_dir / "job" / "out" / "export"
            if not model.is_dir() or model.is_symlink():
                raise MLIPilotError(f"{model}: trial {n}'s exported model is gone — it cannot be validated")
            progress(f"trial {n}: validating ({executor}; spec {spec.name}) — {(row.hypothesis or '')[:60]}")
            line, estimate = _estimate_line(row, spec, store)
            progress(line)
            t0 = time.time()
            with_dir = trial_dir / "validate"
            with_dir.mkdir(exist_ok=True)
            job = _running_job(with_dir / "submitit", progress, n)  # left by a stopped launcher: waited for, not raced
            log = with_dir / PROGRESS
            if job is None:
                log.unlink(missing_ok=True)
                # started from the store, never from the launcher's working directory (a run's train/ may hold
                # a yaml.py that the job's unpickling would import); the executor's python is `-P` too
                with submitting_from(with_dir):
                    job = jobs.make_executor(executor, with_dir / "submitit", timeout_min, cfg.slurm, "validate").submit(
                        jobs.validate_job, str(model), str(spec), str(store.scorecard),
                        str(store.holdout), str(out), str(extra) if extra else None, expected, str(log))
            shown = _LogTail(log, progress)
            try:
                result = jobs.wait(job, poll_s=2.0, on_poll=shown)
            except jobs.JobFailed as e:
                limit = f" (its limit, --timeout-min {timeout_min:g})" if e.kind == FailureKind.TIMEOUT else ""
                raise MLIPilotError(f"trial {n}: validation job failed{limit}: {e} — rerun `mlipilot validate` to resume "
                                    f"(finished checks are kept in {trial_dir / 'validation.partial.json'})") from None
            for line in result["log"][shown.count:]:  # what the polls did not show (a local job that ran inline)
                progress(line)
            summary = {**result["summary"], "wall_seconds": round(time.time() - t0, 1),
                       **({"estimate_seconds": round(estimate, 1)} if estimate is not None else {})}
            out.write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))  # the wall time beside the sum
            ledger.append(ValidationEvent(n, row.commit, summary["passed"], summary["failed_checks"],
                                          summary["spec"], summary["spec_sha256"], summary["wall_seconds"]))
        if row.commit:
            write_validation_note(repo, row.commit, summary)
        composite = float("nan") if row.composite is None else row.composite
        progress(f"trial {n} ({row.verdict}, composite {composite:.4g}):")
        progress(shown_table(summary))
        summaries.append({"trial": n, **summary})
    return summaries
