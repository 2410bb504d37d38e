"""`mlipilot init`: a run directory (git repo the agent works in) plus a private store beside it."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from string import Template

from mlipilot import integrity
from mlipilot.benchmark import Benchmark, Problems, load_collecting, resolve_benchmark
from mlipilot.datacheck import data_problems, validation_problems
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
from mlipilot.scorecard.properties import write_property_reference
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


def default_validation_text(spec: ScorecardSpec, config_types: list[str] | None = None) -> str:
    """The derived validation spec; `config_types`: those of the MD starts and the holdout (its structure checks
    then cover every group the scorecard's globs match)."""
    import yaml

    from mlipilot.validation.default import HEADER, STEPS_FACTOR, default_validation

    return (HEADER.format(card=spec.path.name, factor=STEPS_FACTOR)
            + yaml.safe_dump(default_validation(spec, config_types), sort_keys=False, allow_unicode=True))


def benchmark_ref(given: str, bench: Benchmark) -> str:
    """What mlipilot.toml records: a shipped benchmark's name, else the folder's absolute path (a path
    relative to where `init` ran would not resolve from inside the run directory)."""
    from mlipilot.resources import project_root

    return given if bench.directory == project_root() / "benchmarks" / given else str(bench.directory)


def _check_foundations(bench: Benchmark, specs: list[str] | None, elements: set[str], progress,
                       problems: Problems) -> list:
    """The benchmark's and --foundation's models, each loaded and checked against the data's elements (each
    one's problem added to `problems`)."""
    from mlipilot.foundation import inspect, parse_specs

    named = {**bench.foundation_models, **(problems.attempt(parse_specs, specs, file="") or {})}
    models = [m for name, path in named.items()
              if (m := problems.attempt(inspect, name, path, elements, file=path)) is not None]
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


# The lines init tells a workspace's train.py to add: they import what they use (a train.py that never
# imported os failed every trial with NameError after applying an earlier version of them).
SEED_LINES = ('import os', 'if os.environ.get("MLIPILOT_SEED"):', '    cmd += ["--seed", os.environ["MLIPILOT_SEED"]]')
FOUNDATION_LINES = ('import json, os', 'models = json.loads(os.environ.get("MLIPILOT_FOUNDATION_MODELS") or "{}")',
                    'if config.get("foundation_model") not in (None, "none"):',
                    '    config["foundation_model"] = models[config["foundation_model"]]')


def _code(lines: tuple[str, ...]) -> str:
    return " ".join(f"`{x.strip()}`" for x in lines)


def undefined_names(text: str) -> list[tuple[int, str]]:
    """(line, name) of each name a script reads but never binds (no import, assignment, def, argument, ...) and
    that is no builtin: it raises NameError when reached. A `from x import *` makes every name possible."""
    import ast
    import builtins

    tree = ast.parse(text)
    bound = set(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__",
                                  "__builtins__", "__annotations__", "__path__", "__cached__"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return []
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    seen: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            seen[node.id] = min(seen.get(node.id, node.lineno), node.lineno)
    return sorted((line, name) for name, line in seen.items())


def train_script_problems(bench: Benchmark, foundations: bool = False) -> list[str]:
    """A dry check of the workspace's train.py: it must be Python whose every name is defined or imported (else
    every trial fails with a SyntaxError or NameError), read the harness's MLIPILOT_SEED (else every seed trains
    the same model and noise margins measure nothing), and, when the run has foundation models, read
    MLIPILOT_FOUNDATION_MODELS the same way (else mace-torch gets the bare name and finds no such file)."""
    import importlib.util

    script = bench.workspace / "train" / "train.py"
    if not script.is_file():
        return [f"{script}: missing — the harness runs train/train.py --out-dir DIR --model-out PATH; "
                "start from workspace_template/generic/train/train.py"]
    text, out = script.read_text(errors="replace"), []
    try:
        for line, name in undefined_names(text):
            module = importlib.util.find_spec(name) is not None if name.isidentifier() else False
            out.append(f"{script}: line {line}: name '{name}' is used but never imported or defined, so every trial "
                       f"fails with NameError — " + (f"add `import {name}` at its top" if module
                                                     else f"define or import {name} before line {line}"))
    except SyntaxError as e:
        out.append(f"{script}: line {e.lineno}: not valid Python ({e.msg}), so every trial fails — fix it")
    if "MLIPILOT_SEED" not in text:
        out.append(f"{script}: does not read MLIPILOT_SEED, the harness's training seed, so every seed would train the "
                   f"same model — add `{SEED_LINES[0]}` at its top and, before the training command runs: "
                   f"{_code(SEED_LINES[1:])} (the second line indented under the if; cmd: your trainer's argument "
                   "list — or pass the seed your trainer takes)")
    if foundations:
        from mlipilot.foundation import ENV

        if ENV not in text:
            out.append(f"{script}: does not read {ENV}, where the harness names the foundation models' files, "
                       "so config.yaml's foundation_model: NAME reaches mace-torch as a bare name (\"No such file "
                       f"or directory\") — add `{FOUNDATION_LINES[0]}` at its top and, after reading "
                       f"train/config.yaml into a dict config: {_code(FOUNDATION_LINES[1:])} (the last line "
                       "indented under the if), then hand mace-torch that config (as "
                       "workspace_template/generic/train/train.py does: config.resolved.yaml)")
    return out


def check_train_script(bench: Benchmark, foundations: bool = False) -> None:
    """train_script_problems, raised (one line each)."""
    if lines := train_script_problems(bench, foundations):
        raise MLIPilotError("\n".join(lines))


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


def _property_reference(spec: ScorecardSpec, progress) -> dict | None:
    """The reference values of the scorecard's property metrics (its own, or its reference calculator's,
    computed now), or None when it names none; MLIPilotError with the fix when there is nothing to compare with."""
    from mlipilot.scorecard.properties import named, reference_values

    if not named(spec.metric_names()):
        return None
    ref = spec.stability.reference
    try:
        values = reference_values(spec, ref.make if ref else None)
    except ValueError as e:
        raise MLIPilotError(f"{spec.path}: {e}") from None
    progress("property reference: " + ", ".join(f"{q} {v:.4g}" for q, v in values.items())
             + (f" ({ref} at its own equilibrium)" if ref else " (the scorecard's reference_values)"))
    return values


def _frames(path: Path, bench: Benchmark) -> list:
    """A data file's frames (labels in eV, eV/Å), or none when it does not read (the data check said why)."""
    from ase.io import read

    from mlipilot.units import convert_frames

    try:
        return convert_frames(list(read(path, index=":", format="extxyz")), bench.units)
    except Exception:  # noqa: BLE001 -- reported by the data check, with the fix
        return []


def _closest_radii(frames: dict[str, list]) -> tuple[str, str, float] | None:
    """The element pair of the training data with the smallest covalent-radii sum (its tightest bond)."""
    from ase.data import atomic_numbers, covalent_radii

    els = sorted({s for f in frames.get("train", []) for s in f.get_chemical_symbols()})
    pairs = [(a, b, float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]))
             for i, a in enumerate(els) for b in els[i:]]
    return min(pairs, key=lambda p: p[2]) if pairs else None


def _explain_min_distance(problems: Problems, path: Path, spec: ScorecardSpec, frames: dict[str, list],
                          progress) -> None:
    """kind structures bounds contacts by min_distance_factor (x the pair's covalent-radii sum): a dropped bulk
    `min_distance_A` is translated into the factor it meant, and a factor left at its default is said."""
    import yaml

    if spec.stability.kind != "structures" or (pair := _closest_radii(frames)) is None:
        return
    a, b, radii = pair
    try:
        raw = (yaml.safe_load(Path(path).read_text()) or {}).get("stability") or {}
    except Exception:  # noqa: BLE001 -- the scorecard's own check reported it
        return
    meant = raw.get("min_distance_A") if isinstance(raw, dict) else None
    default = spec.stability.min_distance_factor
    if isinstance(meant, (int, float)) and not isinstance(meant, bool):
        for k, (where, line) in enumerate(problems.items):
            if "field 'stability.min_distance_A'" in line:
                problems.items[k] = (where, f"{line}: `min_distance_A: {meant:g}` means `min_distance_factor: "
                                            f"{meant / radii:.2f}` here ({meant:g} Å / {radii:.2f} Å, the {a}–{b} "
                                            f"covalent radii sum; without it {default:g} applies, "
                                            f"{default * radii:.2f} Å)")
    elif isinstance(raw, dict) and "min_distance_factor" not in raw:
        progress(f"{path}: stability.min_distance_factor not given — the default {default:g} applies: MD fails when a "
                 f"pair comes closer than {default:g} × its covalent radii sum ({a}–{b}: {default * radii:.2f} Å)")


def _name_start(message: str, spec: ScorecardSpec, starts: list) -> str:
    """The reference check's refusal of a stability run, with the config_type of the structure it started from."""
    import re

    from mlipilot.scorecard.structure_stability import EXPLICIT, pick_structures

    m = re.search(r"stability run '([^']+)'", message)
    if m is None or spec.stability.kind != "structures":
        return message
    try:
        k = int(m.group(1).rsplit("_", 2)[1])
        picked = pick_structures(starts, spec.stability.structures)[k]
    except (ValueError, IndexError):
        return message
    where = "md_structures frame" if starts and all(f.info.get(EXPLICIT) for f in starts) else "holdout's first frame"
    return message.replace(m.group(0), f"{m.group(0)} (started from the {where} of config_type "
                                        f"'{picked.info.get('config_type', 'default')}', {len(picked)} atoms)", 1)


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
    # Every problem of the arguments, benchmark.yaml, the scorecard, the workspace, the data and the validation
    # spec is found in one pass and reported at once, grouped by file (not one per round of init); the expensive
    # checks (property references, the winnable-MD proof) run only once these pass.
    problems = Problems()
    try:
        get_executor(executor)
    except UnknownExecutor as e:
        problems.add(f"--executor: {e}", "")
    if run_dir.exists() and any(run_dir.iterdir()):
        problems.add(f"{run_dir}: exists and is not empty — choose a new directory", "")
    if store.exists() and any(store.iterdir()):
        problems.add(f"{store}: private store exists and is not empty — remove it or pass --store", "")
    if store == run_dir or run_dir in store.parents:
        problems.add(f"{store}: the private store must be outside the run directory — pass --store elsewhere", "")
    bad_seed = data_seed is not None and int(data_seed) < 0  # numpy's generators take seeds >= 0 only
    if bad_seed:
        problems.add(f"--data-seed: expected an integer >= 0, got {data_seed}", "")
    bench = problems.attempt(resolve_benchmark, benchmark, problems)
    if bench is None:
        problems.raise_if_any()
    spec = load_collecting(bench.scorecard, load_spec, problems)  # validate before writing anything
    named = bool(bench.foundation_models or foundation)
    for line in train_script_problems(bench, foundations=named):
        problems.add(line, bench.workspace / "train" / "train.py")
    if (knobs := bench.template_file("knobs.yaml")) is not None:
        load_collecting(knobs, load_knobs, problems)  # options, types, ranges and metric names: not mid-run
    if sandbox is None:
        sandbox, why = probe_sandbox()
        if why and shutil.which("bwrap"):  # installed but failing: never fall back to an unsealed run silently
            problems.add(f"the training sandbox (bubblewrap, {shutil.which('bwrap')}) does not start here: "
                         f"{why} — fix that and run init again, or pass --sandbox none to train with your "
                         "full rights (train/train.py could then read the holdout)", "")
        elif why:
            progress(f"WARNING: no training sandbox works here ({why}); this run uses sandbox = none, so "
                     "train/train.py runs with your full rights. Fix that, then edit [sandbox] in mlipilot.toml.")
    elif sandbox not in [str(k) for k in SandboxKind]:
        problems.add(f"--sandbox: unknown sandbox {sandbox!r} — use one of {', '.join(map(str, SandboxKind))}", "")
    seed = None
    if bench.generated and not bad_seed:
        if data_seed is not None:
            progress(f"data seed {int(data_seed)} given: anyone who knows it can regenerate this run's holdout — "
                     "the agent too, inside train.py, and train on it; use a public seed to reproduce published "
                     "numbers, never to compare agents")
        seed = bench.draw_data_seed() if data_seed is None else int(data_seed)
    elif data_seed is not None and not bench.generated:
        problems.add(f"--data-seed: benchmark {bench.name} has its own data files, not a generator "
                     "— leave --data-seed out", "")
    data: dict[str, Path] = {}
    if not (bench.generated and bad_seed):
        progress(f"benchmark {bench.name}: preparing data ({size})")
        data = bench.data_files(size=size, seed=seed, problems=problems)
        for line in data_problems(bench, spec, data, progress=progress):  # bad data fails here, before anything
            problems.add(line)
    frames = {split: _frames(path, bench) for split, path in data.items()}
    starts = frames.get("md_structures") or frames.get("holdout", [])
    if spec is not None:
        _explain_min_distance(problems, bench.scorecard, spec, frames, progress)
    derived = None
    if bench.validation is not None:
        vspec = load_collecting(bench.validation, load_validation_spec, problems)
        if vspec is not None and frames.get("holdout"):  # a check whose structures are not there measures nothing
            for line in validation_problems(vspec, frames["holdout"], md_start_frames(
                    frames["holdout"], data.get("md_structures"))):
                problems.add(line, bench.validation)
    elif spec is not None:  # the spec init derives: every structure group the scorecard's globs match
        types = sorted({str(f.info.get("config_type", "default")) for f in [*starts, *frames.get("holdout", [])]})
        derived = default_validation_text(spec, types)
    elements = {s for split in ("train", "valid", "holdout") for f in frames.get(split, [])
                for s in f.get_chemical_symbols()}
    foundations = _check_foundations(bench, foundation, elements, progress, problems)
    problems.raise_if_any("init")

    property_reference = _property_reference(spec, progress)  # a property metric with nothing to compare with
    # an unwinnable scorecard (the reference itself fails an MD run) fails here too, not as N infeasible trials
    with tempfile.TemporaryDirectory() as tmp:
        vpath = bench.validation
        if derived is not None:  # the spec init derives: checked (loads, winnable) like a benchmark's own
            vpath = Path(tmp) / VALIDATION_SPEC
            vpath.write_text(derived)
            load_validation_spec(vpath)
        run_starts = md_start_frames(frames["holdout"], data.get("md_structures"))
        try:
            check_reference(spec, run_starts, vpath, progress=progress, cache=cache_dir())
        except MLIPilotError as e:
            raise MLIPilotError(_name_start(str(e), spec, run_starts)) from None

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
        if property_reference is not None:  # what the property metrics compare with, sealed
            write_property_reference(store, property_reference)
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
