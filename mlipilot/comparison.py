"""`mlipilot bench`: the same benchmark for several agents × seeds, from an identical start.

Each (agent, seed) gets its own run directory under OUT/runs/. The first run fixes the start
(baseline tree, data, scorecard and harness hashes) in OUT/bench.json; every other run must match
it. Finished runs are skipped, half-finished ones resume; a run that errors is reported as
incomplete and the bench goes on. With `validate`, each finished run's final best model then goes
through `mlipilot validate` (done once: a re-run finds it validated)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import traceback
from pathlib import Path
from typing import Callable

from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents import open_agent
from mlipilot.benchmark import Benchmark, resolve_benchmark
from mlipilot.cores import sharing
from mlipilot.errors import MLIPilotError
from mlipilot.executors import ExecutorKind, get_executor
from mlipilot.git_history import RunRepo
from mlipilot.integrity import sha256_file
from mlipilot.records import COMPLETED, ExitStatus, RunEvent
from mlipilot.results import run_rows, summary, write_table
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run, read_data_seed
from mlipilot.store import Store
from mlipilot.trial import harness_hash

DONE = COMPLETED


def run_name(agent: str, seed: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", agent) + f"-s{seed}"


def start_fingerprint(root: Path, store: Path) -> dict:
    repo = RunRepo(root).repo
    init = repo.git.rev_list("--max-parents=0", "HEAD").split()[0]
    # every tracked file of the initial commit but mlipilot.toml, which names the run and its store
    listing = repo.git.ls_tree("-r", init).splitlines()
    baseline = hashlib.sha256("\n".join(x for x in listing if not x.endswith("\tmlipilot.toml")).encode()).hexdigest()
    return {"baseline": baseline,
            "holdout": sha256_file(Store(store).holdout), "scorecard": sha256_file(Store(store).scorecard),
            "harness": harness_hash(), "sandbox": str(load_run_config(root).sandbox.kind)}


def launch_run(root: str, agent: str, seed: int, iterations: int, api_base: str | None,
               progress: Callable[[str], None] = print) -> str:
    """One (agent, seed) run to its budget; in-process, or as the body of a Slurm launcher job."""
    # Inside a launcher job, its own SLURM_* variables (array ids above all) would be inherited by
    # the trial jobs it submits and mislead submitit there about which job it is running.
    for key in [k for k in os.environ if k.startswith(("SLURM_", "SBATCH_")) and k != "SLURM_CONF"]:
        del os.environ[key]
    cfg = load_run_config(Path(root))
    with open_agent(agent, seed=seed, api_base=api_base) as a:
        return run_agent(cfg, a, Budget(iterations=iterations), progress=progress)


def _run_launcher_jobs(kind: ExecutorKind, launchers: list[tuple[str, dict, tuple]], out: Path,
                       parallel_runs: int, progress: Callable[[str], None]) -> None:
    """Launchers as an array job (on Slurm one CPU each; `parallel_runs` at a time, so trial jobs still
    find CPUs on a small cluster)."""
    from mlipilot import jobs

    ex = kind.launcher_executor(out / "launchers", timeout_min=24 * 60, parallel=parallel_runs)
    args = [a for _, _, a in launchers]
    with sharing(parallel_runs):  # launchers started together split the cores for training
        submitted = ex.map_array(launch_run, *zip(*args))
    progress(f"bench: {len(submitted)} launcher jobs submitted ({', '.join(j.job_id for j in submitted)})")
    for (name, entry, _), job in zip(launchers, submitted):
        try:
            status = jobs.wait(job, poll_s=5)
            entry.update(status="finished" if status in DONE else "incomplete", exit_status=status, job_id=job.job_id)
            progress(f"[{name}] launcher job {job.job_id}: {status}")
        except jobs.JobFailed as e:
            entry.update(status="incomplete", error=str(e), job_id=job.job_id)
            progress(f"[{name}] INCOMPLETE: launcher job {job.job_id}: {e}")


def bench_data_seed(out: Path, manifest: dict, bench: Benchmark, given: int | None) -> int | None:
    """One data seed for every run of a bench, so that they share one holdout: the seed its earlier runs'
    stores recorded (a resumed bench), else `given`, else a private draw. Never written under OUT outside
    the stores: the training sandbox can read the rest of OUT."""
    if given is not None and given < 0:  # numpy's generators take seeds >= 0 only
        raise MLIPilotError(f"--data-seed: expected an integer >= 0, got {given}")
    if not bench.generated:
        if given is not None:
            raise MLIPilotError(f"--data-seed: benchmark {bench.name} has its own data files, not a generator "
                                "— leave --data-seed out")
        return None
    stores = (out / "runs" / f"{name}.mlipilot-store" for name in manifest["runs"])
    recorded = [s for s in map(read_data_seed, stores) if s is not None]
    if recorded:
        if given is not None and given != recorded[0]:
            raise MLIPilotError(f"--data-seed {given}: the runs in {out} were made with another data seed — "
                                "leave --data-seed out to resume, or use another --out")
        return recorded[0]
    if manifest["start"] is not None:  # runs made before data seeds were private: benchmark.yaml's seed
        return bench.public_seed
    return bench.draw_data_seed() if given is None else given


def _finished(store: Path, iterations: int) -> bool:
    ends = [e for e in Store(store).ledger.events(RunEvent) if e.event == "run_end"]
    return bool(ends) and ends[-1].exit_status in DONE and \
        (ends[-1].exit_status != ExitStatus.BUDGET_ITERATIONS or (ends[-1].iterations or 0) >= iterations)


def _validate_runs(manifest: dict, out: Path, executor: str, progress: Callable[[str], None]) -> None:
    """Validate each finished run's final best model, one after another from this process (on Slurm the
    validation is the run's own batch job, submitted like `mlipilot validate` would). A validation that
    cannot run (no accepted trial yet, a failed job) is recorded in the run's entry, not raised."""
    from mlipilot.validate import validate_run

    for name, entry in manifest["runs"].items():
        if entry.get("status") != "finished":
            continue  # an incomplete run's best is not its final one
        def say(text: str, n: str = name) -> None:  # the per-check table is several lines: label each
            progress("\n".join(f"[{n}] {line}" for line in text.splitlines()))

        try:
            [done] = validate_run(load_run_config(out / "runs" / name), executor=executor, progress=say)
            entry.pop("validation_error", None)
            entry["validation"] = {k: done[k] for k in ("trial", "passed", "failed_checks")}
        except Exception as e:
            entry.pop("validation", None)
            entry["validation_error"] = f"{type(e).__name__}: {e}"
            progress(f"[{name}] VALIDATION NOT RUN: {entry['validation_error']}")


def run_bench(benchmark: str, agents: list[str], seeds: int, iterations: int, out: Path, executor: str = "local",
              size: str = "default", api_base: str | None = None, progress: Callable[[str], None] = print,
              parallel_runs: int = 1, allow_mixed_sandbox: bool = False, validate: bool = False,
              data_seed: int | None = None) -> dict:
    """`allow_mixed_sandbox` lets runs whose training sandboxes differ (say bwrap and none) share a table;
    otherwise a run that would not be sealed like the others is refused. `validate`: validate each
    finished run's final best model afterwards (the table's `validated` column). `data_seed`: a
    generated benchmark's data seed, shared by every run (None: one drawn privately for the bench)."""
    out = Path(out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    manifest_path = out / "bench.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {
        "benchmark": benchmark, "start": None, "runs": {}}
    if manifest["benchmark"] != benchmark:
        raise MLIPilotError(f"{manifest_path}: this bench ran benchmark {manifest['benchmark']!r}, not "
                            f"{benchmark!r} — use another --out")
    kind = get_executor(executor)
    seed_of_data = bench_data_seed(out, manifest, resolve_benchmark(benchmark), data_seed)
    # each run's training sandbox must not see the other runs' stores: they hold the same holdout
    stores = tuple(str(out / "runs" / f"{run_name(a, s)}.mlipilot-store") for a in agents for s in range(seeds))
    launchers: list[tuple[str, dict, tuple]] = []
    for agent in agents:
        for seed in range(seeds):
            name = run_name(agent, seed)
            root, store = out / "runs" / name, out / "runs" / f"{name}.mlipilot-store"
            entry = manifest["runs"].setdefault(name, {"agent": agent, "seed": seed})
            try:
                if not (root / "mlipilot.toml").exists():
                    init_run(benchmark, root, store=store, executor=executor, size=size, progress=lambda s: None,
                             data_seed=seed_of_data, extra_hide=stores)
                fp = start_fingerprint(root, store)
                if manifest["start"] is None:
                    manifest["start"] = fp
                elif fp != manifest["start"]:
                    diff = [k for k in fp if fp[k] != manifest["start"].get(k)]
                    if diff == ["sandbox"] and allow_mixed_sandbox:
                        progress(f"[{name}] sandbox {fp['sandbox']} differs from {manifest['start'].get('sandbox')}"
                                 " (allowed by --allow-mixed-sandbox)")
                    elif diff == ["sandbox"]:
                        raise MLIPilotError(f"{root}: trains with sandbox {fp['sandbox']}, the other runs with "
                                            f"{manifest['start'].get('sandbox')} — verdicts are not comparable; "
                                            "pass --allow-mixed-sandbox to compare anyway")
                    else:
                        raise MLIPilotError(f"{root}: does not start where the others did ({', '.join(diff)} differ)")
                if _finished(store, iterations):
                    progress(f"[{name}] already finished: skipped")
                    entry["status"] = "finished"
                    continue
                if kind.runs_launchers_as_jobs:  # the run's launcher is itself a batch job, collected below
                    launchers.append((name, entry, (str(root), agent, seed, iterations, api_base)))
                    continue
                progress(f"[{name}] running {agent} (seed {seed}), {iterations} iterations")
                status = launch_run(str(root), agent, seed, iterations, api_base,
                                    progress=lambda s, n=name: progress(f"[{n}] {s}"))
                entry.update(status="finished" if status in DONE else "incomplete", exit_status=status)
            except Exception as e:  # one broken run must not sink the bench; it is reported, not dropped
                entry.update(status="incomplete", error=f"{type(e).__name__}: {e}",
                             traceback=traceback.format_exc()[-2000:])
                progress(f"[{name}] INCOMPLETE: {type(e).__name__}: {e}")
            finally:
                manifest_path.write_text(json.dumps(manifest, indent=1))
    if launchers:
        _run_launcher_jobs(kind, launchers, out, parallel_runs, progress)
        manifest_path.write_text(json.dumps(manifest, indent=1))
    if validate:
        _validate_runs(manifest, out, executor, progress)
        manifest_path.write_text(json.dumps(manifest, indent=1))
    rows = []
    for name, entry in manifest["runs"].items():
        store = out / "runs" / f"{name}.mlipilot-store"
        if Store(store).ledger_path.exists():
            rows += run_rows(store, entry["agent"], entry["seed"], name)
    df = write_table(rows, out)
    summ = summary(df)
    summ.to_csv(out / "summary.csv", index=False)
    incomplete = [n for n, e in manifest["runs"].items() if e.get("status") != "finished"]
    unvalidated = [n for n, e in manifest["runs"].items() if e.get("validation_error")]
    progress(f"bench: {len(manifest['runs'])} runs, {len(df)} rows -> {out / 'results.csv'}"
             + (f"; INCOMPLETE: {', '.join(incomplete)}" if incomplete else "")
             + (f"; VALIDATION NOT RUN: {', '.join(unvalidated)}" if unvalidated else ""))
    return {"manifest": manifest, "table": df, "summary": summ, "incomplete": incomplete}
