"""A benchmark = data (train, valid and a private holdout) + a scorecard spec + a workspace template.

Shipped benchmarks are folders under benchmarks/ with a benchmark.yaml; a user's own system is
the same kind of folder passed by path. Every key is validated here, before anything is created.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ase.data import atomic_numbers

from mlipilot.data_config import DATA_TABLE
from mlipilot.errors import config_error
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

    def data_files(self, size: str = "default", verbose: bool = True, seed: int | None = None) -> dict[str, Path]:
        """Paths of train/valid/holdout (and md_structures when given) extxyz, generating (once per
        seed and size, cached) when the benchmark has a generator; `seed` None: the public seed."""
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
        for split, p in paths.items():
            if not p.is_file():
                raise config_error(self.spec_file, f"data.{split}", f"file {p} does not exist",
                                   "point it at an extxyz file (relative to the benchmark folder)")
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


def resolve_benchmark(name_or_path: str) -> Benchmark:
    candidate = Path(name_or_path)
    directory = candidate.resolve() if (candidate / "benchmark.yaml").is_file() else _shipped().resolve(name_or_path)
    spec_file = directory / "benchmark.yaml"
    d = BENCHMARK.read(read_file(spec_file, "not found", "README 'Bring your own system'")[0], spec_file)
    data = d["data"]
    if not ("generator" in data or all(s in data for s in SPLITS)):
        raise config_error(spec_file, "data", "needs 'generator' or all of train/valid/holdout",
                           "list the three extxyz files")
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
