"""`mlipilot init`: a run directory (git repo the agent works in) plus a private store beside it."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from string import Template

from mlipilot import integrity
from mlipilot.benchmark import Benchmark, resolve_benchmark
from mlipilot.datacheck import check_data
from mlipilot.e0s import ISOLATED_ATOMS
from mlipilot.errors import MLIPilotError
from mlipilot.executors import UnknownExecutor, get_executor
from mlipilot.foundation import install as install_foundations
from mlipilot.foundation import knobs_yaml
from mlipilot.git_history import RunRepo, format_message
from mlipilot.integrity import (
    LARGE_DATA_MANIFEST,
    VALIDATION_SPEC,
    protected_hashes,
    save_hashes,
    seal_digest,
    seal_store,
    sha256_file,
)
from mlipilot.knobs import load_knobs
from mlipilot.resources import cache_dir
from mlipilot.run_config import CONFIG_NAME, TEMPLATE, load_run_config
from mlipilot.sandbox import SandboxKind
from mlipilot.sandbox import probe as probe_sandbox
from mlipilot.scorecard.evaluate import MD_STRUCTURES, md_start_frames
from mlipilot.scorecard.spec import ScorecardSpec, load_spec
from mlipilot.reference_check import check_reference
from mlipilot.store import Store
from mlipilot.validation.spec import load_validation_spec
from mlipilot.units import copy_labels

GITIGNORE = "__pycache__/\n*.pyc\n"


def read_data_seed(store: Path) -> int | None:
    """The data seed recorded in a run's store (None: a benchmark with its own files, or an older run)."""
    path = Store(store).data_seed
    return int(json.loads(path.read_text())["seed"]) if path.is_file() else None


def render_program(text: str, bench: Benchmark, spec: ScorecardSpec, data: dict[str, Path]) -> str:
    """Fill a program.md template's $name, $elements, $constraints, ... from the benchmark, so a
    generic workspace still names the system and its scorecard ($$ for a literal dollar)."""
    from ase.data import atomic_numbers
    from ase.io import read

    elements = sorted({s for f in read(data["train"], index=":", format="extxyz") for s in f.get_chemical_symbols()},
                      key=atomic_numbers.get)
    constraints = "\n".join(
        f"  - `{c.metric}` {'≤ ' + format(c.max, 'g') if c.max is not None else '≥ ' + format(c.min, 'g')} {c.unit}"
        for c in spec.constraints)
    composite = " + ".join(f"{t.weight:g} × {t.metric}/{t.scale:g}" for t in spec.composite)
    runs = ", ".join(f"{r.name} ({r.ensemble}, {r.temperature_K[0]:g}"
                     + (f"→{r.temperature_K[1]:g}" if r.temperature_K[1] != r.temperature_K[0] else "")
                     + f" K, {r.steps} steps)" for r in spec.stability.runs)
    md = f"{spec.stability.kind} — {runs}"
    e0s = (", ".join(f"{el} {v:.6g} eV" for el, v in bench.isolated_atoms.items()) + " for the isolated atoms"
           " (also in data/isolated_atoms.json)") if bench.isolated_atoms else "none given; fit them to the data"
    return Template(text).safe_substitute(name=bench.name, elements=", ".join(elements),
                                          description=bench.description, constraints=constraints,
                                          composite=composite, md=md, e0s=e0s)


def default_validation_text(spec: ScorecardSpec) -> str:
    import yaml

    from mlipilot.validation.default import HEADER, STEPS_FACTOR, default_validation

    return (HEADER.format(card=spec.path.name, factor=STEPS_FACTOR)
            + yaml.safe_dump(default_validation(spec), sort_keys=False, allow_unicode=True))


def benchmark_ref(given: str, bench: Benchmark) -> str:
    """What mlipilot.toml records: a shipped benchmark's name, else the folder's absolute path (a path
    relative to where `init` ran would not resolve from inside the run directory)."""
    from mlipilot.resources import project_root

    return given if bench.directory == project_root() / "benchmarks" / given else str(bench.directory)


def _check_foundations(bench: Benchmark, specs: list[str] | None, data: dict[str, Path], progress) -> list:
    """The benchmark's and --foundation's models, each loaded and checked against the data's elements."""
    from ase.io import read

    from mlipilot.foundation import inspect, parse_specs

    named = {**bench.foundation_models, **parse_specs(specs)}
    if not named:
        return []
    elements = {s for split in ("train", "valid", "holdout") for f in read(data[split], index=":", format="extxyz")
                for s in f.get_chemical_symbols()}
    models = [inspect(name, path, elements) for name, path in named.items()]
    for m in models:
        progress(f"foundation model {m.describe()} — sha256 {m.sha256[:16]}")
    return models


def foundation_brief(models: list) -> str:
    """program.md's paragraph on the run's foundation models (none: nothing)."""
    if not models:
        return ""
    lines = "\n".join(f"- `{m.describe()}`" for m in models)
    return ("\n\n## Foundation models\n\nThis run can fine-tune instead of training from scratch: set "
            "`foundation_model: <name>` in train/config.yaml (`none` trains from scratch). mace-torch then takes "
            "the foundation's architecture (num_channels, max_L, r_max, ... are its own); `E0s: estimated` "
            "usually suits fine-tuning. Available:\n\n" + lines + "\n")


SEED_LINES = ('if os.environ.get("MLIPILOT_SEED"):', '    cmd += ["--seed", os.environ["MLIPILOT_SEED"]]')


def check_train_script(bench: Benchmark) -> None:
    """A dry check of the workspace's train.py: it must read the harness's MLIPILOT_SEED, else every seed
    trains the same model and noise margins measure nothing (found at init, not after a noise run)."""
    script = bench.workspace / "train" / "train.py"
    if not script.is_file():
        raise MLIPilotError(f"{script}: missing — the harness runs train/train.py --out-dir DIR --model-out PATH; "
                            "start from workspace_template/generic/train/train.py")
    if "MLIPILOT_SEED" not in script.read_text(errors="replace"):
        raise MLIPilotError(f"{script}: does not read MLIPILOT_SEED, the harness's training seed, so every seed would "
                            f"train the same model — add, before the training command runs: `{SEED_LINES[0]}` "
                            f"`{SEED_LINES[1].strip()}` (or pass the seed your trainer takes)")


def program_md_warnings(template: str, spec: ScorecardSpec) -> list[str]:
    """What a benchmark's own program.md says about the MD that the scorecard does not run (a copied
    program.md describing another system's runs would mislead the agent)."""
    import re

    temps = {t for r in spec.stability.runs for t in r.temperature_K}
    # temperatures in sentences about MD only: "the training data stop at 1500 K" names no run
    sentences = re.split(r"(?<=[.;!?])\s+|\n\s*\n", template)
    about_md = [x for x in sentences if re.search(r"\bMD\b|dynamics|\b(NVT|NPT|ramp|Langevin|thermostat)", x, re.I)]
    named = {float(t) for x in about_md for t in re.findall(r"(\d+(?:\.\d+)?)\s*K\b", x)}
    names = {r.name for r in spec.stability.runs}
    quoted = {w for w in re.findall(r"`([A-Za-z][\w]*)`", template) if re.match(r"(md|nvt|npt|ramp)", w)
              and w not in names and not w.startswith("md_")}
    out = []
    if stray := sorted(named - temps):
        out.append(f"names {', '.join(f'{t:g} K' for t in stray)}")
    if quoted:
        out.append(f"names runs {', '.join(sorted(quoted))}")
    return out


def keep_large_data_out_of_git(run_dir: Path, progress=print) -> list[str]:
    """Data files above integrity.LARGE_DATA_BYTES stay in the run directory but out of its git (a clone
    or push would carry them forever): listed with their sha256 in a tracked, protected manifest that
    every trial checks, and copied into each training job's tree. Returns their paths."""
    entries = {}
    for path in sorted((run_dir / "data").iterdir()):
        size = path.stat().st_size
        if path.is_file() and size > integrity.LARGE_DATA_BYTES:
            rel = path.relative_to(run_dir).as_posix()
            entries[rel] = {"bytes": size, "sha256": sha256_file(path)}
            progress(f"WARNING: {rel} is {size / 1e6:.3g} MB: kept out of the run's git (git-ignored; its sha256 is in "
                     f"{LARGE_DATA_MANIFEST}, checked before every trial) — a clone of the run lacks it, back it up")
    if entries:
        (run_dir / LARGE_DATA_MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True))
    return list(entries)


def default_store(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".mlipilot-store")


def data_table(table: dict | None) -> str:
    """benchmark.yaml's data_actions as the run's [data] table ("" without one: data actions stay off)."""
    if table is None:
        return ""
    budget = table.get("label_budget") or {}
    lines = ["", "[data]                      # from the benchmark's data_actions"]
    if budget:
        lines.append("label_budget = { " + ", ".join(f"{k} = {v!r}" for k, v in budget.items()) + " }")
    if table.get("reference"):
        lines.append(f"reference = {json.dumps(table['reference'])}")
    return "\n".join(lines) + "\n"


def init_run(benchmark: str, run_dir: Path, store: Path | None = None, executor: str = "local",
             size: str = "default", train_timeout_min: float = 30, score_timeout_min: float = 10,
             progress=print, sandbox: str | None = None, base_seed: int = 1, data_seed: int | None = None,
             extra_hide: tuple[str, ...] = (), foundation: list[str] | None = None) -> Path:
    """`sandbox` None probes: bwrap where it starts here, else none (said loudly, with the fix).
    `base_seed`: the harness's training seed, [noise] base_seed in mlipilot.toml. `data_seed`: a
    generated benchmark's data seed; None draws a private one (kept in the store only). `extra_hide`: more
    paths the training sandbox must not see (a bench's other stores)."""
    run_dir = Path(run_dir).resolve()
    store = Path(store).resolve() if store else default_store(run_dir)
    try:
        get_executor(executor)
    except UnknownExecutor as e:
        raise MLIPilotError(f"--executor: {e}") from None
    if run_dir.exists() and any(run_dir.iterdir()):
        raise MLIPilotError(f"{run_dir}: exists and is not empty — choose a new directory")
    if store.exists() and any(store.iterdir()):
        raise MLIPilotError(f"{store}: private store exists and is not empty — remove it or pass --store")
    if store == run_dir or run_dir in store.parents:
        raise MLIPilotError(f"{store}: the private store must be outside the run directory — pass --store elsewhere")
    bench = resolve_benchmark(benchmark)
    spec = load_spec(bench.scorecard)  # validate before writing anything
    check_train_script(bench)
    if (knobs := bench.template_file("knobs.yaml")) is not None:
        load_knobs(knobs)  # options, types, ranges and metric names: a typo fails here, not mid-run
    if sandbox is None:
        sandbox, why = probe_sandbox()
        if why and shutil.which("bwrap"):  # installed but failing: never fall back to an unsealed run silently
            raise MLIPilotError(f"the training sandbox (bubblewrap, {shutil.which('bwrap')}) does not start here: "
                                f"{why} — fix that and run init again, or pass --sandbox none to train with your "
                                "full rights (train/train.py could then read the holdout)")
        if why:
            progress(f"WARNING: no training sandbox works here ({why}); this run uses sandbox = none, so "
                     "train/train.py runs with your full rights. Fix that, then edit [sandbox] in mlipilot.toml.")
    elif sandbox not in [str(k) for k in SandboxKind]:
        raise MLIPilotError(f"--sandbox: unknown sandbox {sandbox!r} — use one of {', '.join(map(str, SandboxKind))}")
    if data_seed is not None and int(data_seed) < 0:  # numpy's generators take seeds >= 0 only
        raise MLIPilotError(f"--data-seed: expected an integer >= 0, got {data_seed}")
    seed = None
    if bench.generated:
        if data_seed is not None:
            progress(f"data seed {int(data_seed)} given: anyone who knows it can regenerate this run's holdout — "
                     "the agent too, inside train.py, and train on it; use a public seed to reproduce published "
                     "numbers, never to compare agents")
        seed = bench.draw_data_seed() if data_seed is None else int(data_seed)
    elif data_seed is not None:
        raise MLIPilotError(f"--data-seed: benchmark {bench.name} has its own data files, not a generator "
                            "— leave --data-seed out")
    progress(f"benchmark {bench.name}: preparing data ({size})")
    data = bench.data_files(size=size, seed=seed)
    check_data(bench, spec, data, progress=progress)  # bad data fails here, before anything is created
    # an unwinnable scorecard (the reference itself fails an MD run) fails here too, not as N infeasible trials
    from ase.io import read

    derived = None if bench.validation is not None else default_validation_text(spec)
    with tempfile.TemporaryDirectory() as tmp:
        vpath = bench.validation
        if derived is not None:  # the spec init derives: checked (loads, winnable) like a benchmark's own
            vpath = Path(tmp) / VALIDATION_SPEC
            vpath.write_text(derived)
            load_validation_spec(vpath)
        check_reference(spec, md_start_frames(read(data["holdout"], index=":", format="extxyz"),
                                              data.get("md_structures")), vpath, progress=progress, cache=cache_dir())
    foundations = _check_foundations(bench, foundation, data, progress)

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        store.mkdir(parents=True, exist_ok=True)
        (run_dir / "data").mkdir()
        if not bench.units.identity:
            progress(f"converting labels of every split: {bench.units.describe()} (benchmark.yaml energy_unit/"
                     "force_unit)")
        for split in ("train", "valid"):
            copy_labels(data[split], run_dir / "data" / f"{split}.xyz", bench.units)
        copy_labels(data["holdout"], Store(store).holdout, bench.units)
        if bench.generated:  # private: whoever knows the seed can regenerate the holdout
            Store(store).data_seed.write_text(json.dumps({"generator": bench.data["generator"], "seed": seed,
                                                       "size": size}, indent=1))
        if "md_structures" in data:  # MD starts the scorer uses; private like the holdout
            copy_labels(data["md_structures"], store / MD_STRUCTURES, bench.units)
        if bench.isolated_atoms:  # readable by the agent: the expert's (and anyone's) E0s
            (run_dir / "data" / ISOLATED_ATOMS).write_text(json.dumps(bench.isolated_atoms, indent=1))
        shutil.copy(bench.scorecard, Store(store).scorecard)
        if bench.validation is not None:  # private: `mlipilot validate` reads it, the agent never sees it
            shutil.copy(bench.validation, store / VALIDATION_SPEC)
        else:
            (store / VALIDATION_SPEC).write_text(derived)
            progress(f"validation spec: {bench.spec_file} names none, so one is derived from the scorecard (its MD "
                     f"longer and larger, properties vs its reference) and sealed in {store / VALIDATION_SPEC}")
        shutil.copy(bench.scorecard, run_dir / "scorecard.yaml")  # readable by the agent, hash-protected
        shutil.copytree(bench.workspace / "train", run_dir / "train",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for extra in ("program.md", "knobs.yaml"):  # the benchmark folder's own, else its workspace's
            source = bench.template_file(extra)
            if source is not None:
                text = source.read_text()
                if extra == "program.md":
                    if stray := program_md_warnings(text, spec):  # the scorecard's real runs follow it
                        progress(f"WARNING: {source}: {'; '.join(stray)}, which the scorecard does not run — the "
                                 "run's program.md gets the scorecard's MD runs appended; write $md and $constraints "
                                 "where they belong and init fills them in")
                        text += "\n## The scorecard's MD runs (filled in by mlipilot init)\n\n$md\n" + \
                            ("\nConstraints:\n$constraints\n" if "$constraints" not in text else "")
                    text = render_program(text, bench, spec, data) + foundation_brief(foundations)
                elif foundations:
                    text += knobs_yaml(foundations)  # the agent chooses one by name
                (run_dir / extra).write_text(text)
        install_foundations(store, foundations)
        large = keep_large_data_out_of_git(run_dir, progress)
        (run_dir / ".gitignore").write_text(GITIGNORE + "".join(f"/{rel}\n" for rel in large))
        branch = f"mlipilot/{run_dir.name}"
        (run_dir / CONFIG_NAME).write_text(TEMPLATE.format(
            name=run_dir.name, benchmark=benchmark_ref(benchmark, bench), branch=branch, store=store, executor=executor,
            train_timeout_min=train_timeout_min, score_timeout_min=score_timeout_min, sandbox=sandbox,
            base_seed=int(base_seed)) + data_table(bench.data_actions))
        cfg = load_run_config(run_dir)
        repo = RunRepo.create(run_dir, branch)
        save_hashes(store, protected_hashes(run_dir, cfg.editable))
        # what the training sandbox must not see: the store, and every place the holdout came from
        hide = sorted({str(store), str(cache_dir().resolve()), str(bench.directory), str(data["holdout"].resolve())}
                      | ({str(bench.validation)} if bench.validation is not None else set()) | set(extra_hide))
        seal = seal_store(store, hide)
        repo.commit_all(format_message(f"MLIPilot: initialise run from benchmark {bench.name}", "",
                                       {"Benchmark": bench.name, "Scorecard-SHA256": spec.sha256[:16],
                                        "Sandbox": sandbox, "Seal-SHA256": seal_digest(seal["files"])}))
        Store(store).ledger_path.touch()
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written
        shutil.rmtree(store, ignore_errors=True)
        raise
    progress(f"run directory {run_dir} (branch {branch}); private store {store}")
    return run_dir
