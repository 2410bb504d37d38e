"""A benchmark = data (train, valid and a private holdout) + a scorecard spec + a workspace template.

Shipped benchmarks are folders under benchmarks/ with a benchmark.yaml; a user's own system is
the same kind of folder passed by path. Every key is validated here, before anything is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ase.data import atomic_numbers

from mlipilot.data_config import DATA_TABLE
from mlipilot.errors import MLIPilotError, check_keys, config_error
from mlipilot.registry import Registry, load_dotted
from mlipilot.schema import OMIT, Field, Table, read_file
from mlipilot.resources import cache_dir, project_root
from mlipilot.units import ENERGY_UNITS, FORCE_UNITS, LabelUnits, parse_unit

SPLITS = ("train", "valid", "holdout")
DATA_FILE_KEYS = SPLITS + ("md_structures",)
GENERIC_WORKSPACE = "generic"  # workspace_template/generic: used when a benchmark names none


@dataclass(frozen=True)
class Benchmark:
    name: str
    directory: Path
    scorecard: Path
    workspace: Path
    data: dict  # either {"generator": module, "seed": int} or {"train": path, ...}
    isolated_atoms: dict[str, float] = field(default_factory=dict)  # element -> isolated-atom energy (eV)
    description: str = ""
    validation: Path | None = None  # the private validation spec (mlipilot validate)
    units: LabelUnits = LabelUnits()  # what the data files' labels are in; init converts to eV, eV/Å
    foundation_models: dict[str, Path] = field(default_factory=dict)  # name -> a MACE model file to fine-tune from
    data_actions: dict | None = None  # the run's [data] table (labelling budget, reference), written by init

    @property
    def spec_file(self) -> Path:
        return self.directory / "benchmark.yaml"

    @property
    def generated(self) -> bool:
        return "generator" in self.data

    @property
    def public_seed(self) -> int:
        """benchmark.yaml's data seed: public, for scripts and tests; `init` draws a private one."""
        return int(self.data.get("seed", 0))

    @staticmethod
    def draw_data_seed() -> int:
        """A private seed for a generated benchmark's data (its holdout): 63 random bits, so nobody can
        regenerate the holdout by trying seeds. `init` keeps it in the store only."""
        return secrets.randbits(63)

    def data_files(self, size: str = "default", verbose: bool = True, seed: int | None = None,
                   problems: "Problems | None" = None) -> dict[str, Path]:
        """Paths of train/valid/holdout (and md_structures when given) extxyz, generating (once per
        seed and size, cached) when the benchmark has a generator; `seed` None: the public seed.
        `problems`: a missing file is added there (each one) and left out, instead of raised."""
        if self.generated:
            seed = self.public_seed if seed is None else int(seed)
            # keyed on the seed, by a digest so the folder's name does not spell a private seed out (the
            # cache is hidden from the training sandbox, like the store)
            out = cache_dir() / self.name / f"seed-{hashlib.sha256(str(seed).encode()).hexdigest()[:16]}-{size}"
            paths = {s: out / f"{s}.xyz" for s in SPLITS}
            if not all(p.is_file() for p in paths.values()):
                module = load_dotted(self.data["generator"])
                # a private folder per process: two inits generating the same data at once must not mix
                tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
                shutil.rmtree(tmp, ignore_errors=True)
                module.generate(tmp, seed=seed, size=size, verbose=verbose)
                try:
                    tmp.rename(out)  # atomic: an interrupted generation never looks complete
                except OSError:  # another process finished first: same seed, same data; keep theirs
                    if not all(p.is_file() for p in paths.values()):
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
            return paths
        paths = {s: (self.directory / self.data[s]).resolve() for s in DATA_FILE_KEYS if s in self.data}
        for split, p in list(paths.items()):
            if not p.is_file():
                e = config_error(self.spec_file, f"data.{split}", f"file {p} does not exist",
                                 "point it at an extxyz file (relative to the benchmark folder)")
                if problems is None:
                    raise e
                problems.add(str(e), self.spec_file)
                del paths[split]
        return paths

    def template_file(self, name: str) -> Path | None:
        """program.md / knobs.yaml: the benchmark folder's own first, then its workspace's."""
        for folder in (self.directory, self.workspace):
            if (folder / name).is_file():
                return folder / name
        return None


def shipped_benchmarks() -> list[str]:
    return list(_shipped())


def _shipped() -> Registry[Path]:
    """The shipped benchmarks by name (their folders); any other folder is passed by path."""
    return Registry("benchmark", {p.parent.name: p.parent for p in sorted((project_root() / "benchmarks").glob(
        "*/benchmark.yaml"))}, forms=", or a folder holding a benchmark.yaml")


def _isolated_atoms(value: object, directory: Path, spec_file: Path) -> dict[str, float]:
    """A mapping {element: eV} inline, or a JSON file of {element: eV} or {element: {energy_eV: eV}}."""
    where = "isolated_atoms"
    if isinstance(value, str):
        path = (directory / value).resolve()
        if not path.is_file():
            raise config_error(spec_file, where, f"file {path} does not exist", "give a JSON file or an inline mapping")
        try:
            value = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise config_error(spec_file, where, f"{path} is not valid JSON ({e})", "fix the file") from None
    if not isinstance(value, dict):
        raise config_error(spec_file, where, f"expected a mapping or a JSON file, got {value!r}",
                           "write e.g. {Cu: -0.0, Au: -0.0} (eV per isolated atom)")
    out = {}
    for el, v in value.items():
        if isinstance(v, dict):
            v = v.get("energy_eV")
        if str(el) not in atomic_numbers:
            raise config_error(spec_file, f"{where}.{el}", "not a chemical element symbol", "write e.g. Cu, O, H")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise config_error(spec_file, f"{where}.{el}", f"expected an energy in eV, got {v!r}", "write a number")
        out[str(el)] = float(v)
    return out


def _foundation_models(value: object, directory: Path, spec_file: Path) -> dict[str, Path]:
    """`foundation_models: {name: path}` (paths relative to the benchmark folder, or absolute)."""
    from mlipilot.foundation import parse_specs

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise config_error(spec_file, "foundation_models", f"expected a mapping name: path, got {value!r}",
                           "write e.g. foundation_models: {mp0: /models/mace-mp-0-medium.model}")
    return parse_specs({k: str(directory / str(v)) for k, v in value.items()}, f"{spec_file}: foundation_models")


def _unit(kind: str, table) -> Field:
    return Field(object, OMIT, check=lambda u: None if parse_unit(u, kind) is not None else
                 (f"unknown unit {u!r}", f"use one of {', '.join(table)}"))


SEE = "see README 'Bring your own system'"
PATH = "write a name or a relative path"
BENCHMARK = Table({
    "name": Field(str, fix=PATH), "description": Field(str, "", fix=PATH), "scorecard": Field(str, fix=PATH),
    "workspace": Field(str, None, fix=PATH), "data": Field(dict), "isolated_atoms": Field(object, None),
    "validation": Field(str, None, fix=PATH), "energy_unit": _unit("energy", ENERGY_UNITS),
    "force_unit": _unit("force", FORCE_UNITS), "foundation_models": Field(object, None),
    "data_actions": Field(DATA_TABLE, None, fix=SEE)}, missing=SEE, fix=SEE)
TOP_KEYS = tuple(BENCHMARK.fields)
DATA = {"generator": Table({"generator": Field(str), "seed": Field(object, OMIT)}, missing=SEE),  # the data:
        "files": Table({s: Field(str) for s in SPLITS} | {"md_structures": Field(str, OMIT)}, missing=SEE)}  # either


def resolve_benchmark(name_or_path: str, problems: "Problems | None" = None) -> Benchmark | None:
    """The benchmark a shipped name or a folder names. `problems`: every problem of its benchmark.yaml is
    added there (None returned when it cannot be read at all), instead of the first one raised."""
    candidate = Path(name_or_path)
    directory = candidate.resolve() if (candidate / "benchmark.yaml").is_file() else _shipped().resolve(name_or_path)
    spec_file = directory / "benchmark.yaml"
    d = read_file(spec_file, "not found", "README 'Bring your own system'")[0]
    if problems is None:
        return _benchmark(d, directory, spec_file)
    return peel(d, lambda dd: _benchmark(dd, directory, spec_file), spec_file, problems)


def _benchmark(d: dict, directory: Path, spec_file: Path) -> Benchmark:
    d = BENCHMARK.read(d, spec_file)
    data = d["data"]
    # a misspelt split first, with the nearest name (`vaild` -> valid), not "needs all of train/valid/holdout"
    check_keys(data, [*DATA["generator"].fields, *DATA["files"].fields], spec_file, "data.")
    if not ("generator" in data or all(s in data for s in SPLITS)):
        missing = [s for s in SPLITS if s not in data]
        raise config_error(spec_file, "data", f"needs 'generator' or all of train/valid/holdout (missing: "
                           f"{', '.join(missing)})", "list the three extxyz files")
    data = DATA["generator" if "generator" in data else "files"].read(data, spec_file, "data")
    units = {kind: parse_unit(d[key], kind) for key, kind in (("energy_unit", "energy"), ("force_unit", "force"))
             if key in d}
    if units and "generator" in data:
        raise config_error(spec_file, "energy_unit" if "energy" in units else "force_unit",
                           "a generated benchmark's data is already in eV and eV/Å", "leave it out")
    workspace = ((directory / d["workspace"]).resolve() if d["workspace"] is not None
                 else project_root() / "workspace_template" / GENERIC_WORKSPACE)
    bench = Benchmark(d["name"], directory, (directory / d["scorecard"]).resolve(), workspace, data,
                      _isolated_atoms(d["isolated_atoms"], directory, spec_file) if d["isolated_atoms"] is not None
                      else {}, d["description"],
                      (directory / d["validation"]).resolve() if d["validation"] is not None else None,
                      LabelUnits(**units), _foundation_models(d["foundation_models"], directory, spec_file),
                      d["data_actions"])
    if not bench.scorecard.is_file():
        raise config_error(spec_file, "scorecard", f"{bench.scorecard} does not exist", "fix the path")
    if bench.validation is not None and not bench.validation.is_file():
        raise config_error(spec_file, "validation", f"{bench.validation} does not exist", "fix the path or leave it out")
    if not (bench.workspace / "train").is_dir():
        raise config_error(spec_file, "workspace", f"{bench.workspace} has no train/ folder",
                           "fix the path, or leave 'workspace' out for the generic MACE workspace")
    return bench


# --- every problem in one pass ------------------------------------------------------------------------------
# `init` (and `validate --reseal-spec`) checks the benchmark's files and data, the scorecard, the validation spec
# and the workspace, and reports every problem it finds at once, grouped by file — not the first one per round.

_FILE = re.compile(r"^(?P<file>/?[^\s:]+?\.(?:yaml|yml|xyz|extxyz|py|json|toml|md|model))(?=[:\s])")


class Problems:
    """Problems found in one pass: each a line with its fix, grouped by the file it is in."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (file, line); file "" when the line names none

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return sum(not line.startswith("... and ") for _, line in self.items)

    def add(self, text: str, file: Path | str | None = None) -> None:
        """One problem, or several (a multi-line error: each line one, '... and N more' kept with the one before)."""
        for line in str(text).splitlines():
            if not line.strip():
                continue
            if line.startswith("... and ") and self.items:
                where = self.items[-1][0]
            elif file is not None:
                where = str(file)
            else:
                m = _FILE.match(line)
                where = m.group("file") if m else ""
            self.items.append((where, line))

    def attempt(self, fn: Callable[..., "T"], *args: Any, file: Path | str | None = None, **kw: Any) -> "T | None":
        """fn(*args, **kw), its MLIPilotError added (then None)."""
        try:
            return fn(*args, **kw)
        except MLIPilotError as e:
            self.add(str(e), file)
            return None

    def message(self, command: str = "init") -> str:
        """One problem: its line as it is. Several: a count, then every line (each names its file, so it can be
        read or grepped alone), grouped by file in the order the files were first met."""
        if len(self.items) == 1:
            return self.items[0][1]
        files: dict[str, list[str]] = {}
        for where, line in self.items:
            files.setdefault(where, []).append(line)
        n, k = len(self), len([f for f in files if f])
        head = (f"{command} found {n} problems" + (f" in {k} file{'s' if k != 1 else ''}" if k else "")
                + f" — fix each, then run {command} again:")
        return "\n".join([head, *(line for lines in files.values() for line in lines)])

    def raise_if_any(self, command: str = "init") -> None:
        if self.items:
            raise MLIPilotError(self.message(command))


T = TypeVar("T")
_FIELD_ERROR = re.compile(r"^(?P<path>.*?): field '(?P<field>[^']*)': (?P<problem>.*?) — (?P<fix>.*)$", re.S)
_MEANT = re.compile(r"did you mean '([^']+)'\?")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
MAX_PEELED = 25  # problems one file may report in one pass


def _steps(where: str) -> list[str | int]:
    return [int(i) if i else k for k, i in _STEP.findall(where)]


def peel(d: dict, read: Callable[[dict], T], path: Path | str, problems: Problems, shown: str | None = None,
         first: MLIPilotError | None = None) -> T | None:
    """read(d); on a problem with a field, add it, take the field out of the way and read again, so one pass
    names every problem of the file: a misspelt key or name is replaced by the name it meant (its 'did you
    mean'), any other offending key removed (a list item, when removing the key does not clear it). Stops at
    a problem that removing cannot get past (a missing required key, a file-wide one). Returns what the last
    read gave (None when it never succeeded): good enough to check the rest of the benchmark against.
    `shown`: the path the messages name when `read` reads a copy at another path."""
    import copy as _copy

    d = _copy.deepcopy(d)
    removed: dict[tuple, list[int]] = {}  # list (as its path) -> original indices taken out
    reported: set[str] = set()
    escalated: set[str] = set()
    deleted = False  # a key taken out may leave a "missing" behind that is no problem of the user's
    file = shown if shown is not None else path

    def original(steps: list) -> list:
        out, prefix = [], []
        for s in steps:
            if isinstance(s, int):
                for r in sorted(removed.get(tuple(prefix), [])):
                    if r <= s:
                        s += 1
            out.append(s)
            prefix.append(s)
        return out

    def label(steps: list) -> str:
        return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))

    for _ in range(MAX_PEELED):
        try:
            if first is None:
                return read(d)
            e, first = first, None
        except MLIPilotError as err:
            e = err
        text = str(e).replace(str(path), str(shown)) if shown is not None else str(e)
        m = _FIELD_ERROR.match(text)
        if m is None or m.group("field") == "(top level)":
            problems.add(text, file)
            return None
        steps = _steps(m.group("field"))
        where = label(original(steps))
        text = text.replace(f"field '{m.group('field')}'", f"field '{where}'", 1)
        problem, fix = m.group("problem"), m.group("fix")
        if where in reported:  # taking the key out did not clear it: the list item it is in, once
            item = max((k for k, s in enumerate(steps) if isinstance(s, int)), default=None)
            if item is None or where in escalated:
                return None
            escalated.add(where)
            steps = steps[:item + 1]
        elif problem == "missing" and deleted:
            return None  # after a key was taken out: what it left behind, not the user's problem
        else:
            problems.add(text, file)
            reported.add(where)
        if (problem == "missing" and not isinstance(steps[-1], int)) or str(steps[-1]).endswith("kind"):
            return None  # nothing to take out; a kind switches what every other key means
        parent: Any = d
        try:
            for s in steps[:-1]:
                parent = parent[s]
        except (KeyError, IndexError, TypeError):
            return None
        last, meant = steps[-1], _MEANT.search(fix)
        written = re.match(rf"write {re.escape(str(last))}: ([^\s(]+)", fix)  # "write unit: meV/Å": that value
        if isinstance(parent, dict) and last in parent and meant and problem == "unknown key":
            value = parent.pop(last)  # read as the key it meant (unless that one is there too)
            parent.setdefault(meant.group(1), value)
        elif isinstance(parent, dict) and last in parent and meant and problem.startswith("unknown ") \
                and isinstance(parent[last], str):
            parent[last] = meant.group(1)
        elif isinstance(parent, dict) and last in parent and written:
            parent[last] = written.group(1)
        elif isinstance(parent, dict) and last in parent:
            del parent[last]
            deleted = True
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            removed.setdefault(tuple(original(steps[:-1])), []).append(original(steps)[-1])
            del parent[last]
            deleted = True
        else:
            return None
    return None


def load_collecting(path: Path, loader: Callable[[Path], T], problems: Problems) -> T | None:
    """loader(path) (a YAML file's), with every problem of the file added to `problems` (see peel): None when
    it cannot be read. The loaded record keeps `path` (a peeled one is read from a copy)."""
    path = Path(path)
    try:
        return loader(path)
    except MLIPilotError as e:
        first = e
    import yaml

    try:
        d = yaml.safe_load(path.read_bytes())
    except Exception:  # noqa: BLE001 -- the loader's own message says what is wrong with the file
        d = None
    if not isinstance(d, dict):
        problems.add(str(first))
        return None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name

        def read(dd: dict) -> T:
            copy.write_text(yaml.safe_dump(dd, allow_unicode=True, sort_keys=False))
            return loader(copy)

        out = peel(d, read, copy, problems, shown=str(path),
                   first=MLIPilotError(str(first).replace(str(path), str(copy))))
    if out is not None and dataclasses.is_dataclass(out) and getattr(out, "path", None) is not None:
        out = dataclasses.replace(out, path=path)
    return out
