"""The scorecard spec (``scorecards/*.yaml``): what is measured, the bounds, and the composite.

Loading validates every field so a typo fails at ``mlipilot init``/``trial`` with the file,
the field and the fix, never halfway through a trial.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from mlipilot.errors import MLIPilotError, check_keys, config_error


@dataclass(frozen=True)
class Constraint:
    metric: str
    unit: str
    max: float | None = None
    min: float | None = None
    scale: float = 1.0  # divides the excess so violations of different metrics add up

    def violation(self, value: float | None) -> float:
        """Normalised amount by which value breaks the bound (0 when satisfied)."""
        if value is None or value != value or value in (float("inf"), float("-inf")):
            return 1e6  # a missing or non-finite metric is the worst violation, but finite for JSON
        excess = 0.0
        if self.max is not None and value > self.max:
            excess = value - self.max
        if self.min is not None and value < self.min:
            excess = self.min - value
        return excess / self.scale


class Ensemble(StrEnum):
    NVT = "nvt"  # Langevin
    NPT = "npt"  # isotropic Berendsen barostat + thermostat (periodic structures only)


@dataclass(frozen=True)
class MDRun:
    name: str
    supercell: int  # repeats of the 4-atom conventional fcc cell per axis (bulk); unused otherwise
    temperature_K: tuple[float, float]  # (start, end): equal for a fixed temperature, a ramp otherwise
    steps: int
    timestep_fs: float = 2.0
    friction: float = 0.02  # Langevin friction in 1/fs-units of ASE (per time unit)
    seed: int = 0
    ensemble: Ensemble = Ensemble.NVT
    pressure_GPa: float = 0.0  # NPT only
    taut_fs: float = 100.0  # NPT: thermostat time constant
    taup_fs: float = 500.0  # NPT: barostat time constant
    compressibility_per_GPa: float = 0.01  # NPT: only sets how fast the cell responds (Berendsen)


@dataclass(frozen=True)
class ReferenceSpec:
    """An ASE calculator by registry name (``emt``, ``lj``, ...) or a dotted path
    (``package.module:Class``) with keyword parameters; resolved when the scorecard loads."""
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def make(self):
        from mlipilot.scorecard.reference import calculator_class

        return calculator_class(self.name)(**dict(self.params))

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class StructurePick:
    """kind structures: where MD starts. The benchmark's md_structures file when it has one, else a
    deterministic pick from the holdout: the first `per_config_type` frames of each config_type
    matching `config_types` (globs), sorted by config_type, at most `max_structures`."""
    config_types: tuple[str, ...] = ("*",)
    per_config_type: int = 1
    max_structures: int = 4
    min_atoms: int = 0  # periodic cells are repeated until they hold at least this many atoms


@dataclass(frozen=True)
class StabilitySpec:
    runs: tuple[MDRun, ...]
    min_distance_A: float
    max_temperature_factor: float  # instantaneous T above factor × target is a runaway
    reference: ReferenceSpec | None  # reference calculator for the force check on sampled frames
    reference_force_rmse_meV_A: float | None
    sample_every: int
    kind: str = "bulk"  # a key of STABILITY_KINDS: bulk, molecules, structures
    molecules: int = 4  # how many holdout molecules (largest unseen ones first)
    max_bond_deviation_A: float = 0.5  # a bonded pair stretching or shrinking more than this breaks topology
    h_detach_A: float = 2.5  # an H farther than this from every other atom has left its molecule
    structures: StructurePick = StructurePick()
    min_distance_factor: float = 0.5  # structures: a pair closer than factor × (sum of covalent radii) fails
    max_volume_factor: float = 1.5  # structures, NPT: V/V0 outside [1/f, f] is a blow-up or collapse


@dataclass(frozen=True)
class ThroughputSpec:
    supercell: int  # bulk: fcc supercell; 0 with kind molecules: the largest holdout molecule
    steps: int
    warmup_steps: int
    repeats: int
    timestep_fs: float


@dataclass(frozen=True)
class CompositeTerm:
    metric: str
    weight: float
    scale: float


@dataclass(frozen=True)
class ScorecardSpec:
    name: str
    path: Path
    element: str | None  # bulk benchmarks: the element and lattice of the MD cells
    lattice_a: float | None
    constraints: tuple[Constraint, ...]
    composite: tuple[CompositeTerm, ...]
    noise_margin: float  # relative improvement a candidate needs over the incumbent
    stability: StabilitySpec
    throughput: ThroughputSpec
    sha256: str = field(default="")

    def metric_names(self) -> list[str]:
        return [c.metric for c in self.constraints] + [t.metric for t in self.composite]


TOP_KEYS = ("name", "element", "lattice_a", "constraints", "composite", "noise_margin", "stability", "throughput")
CONSTRAINT_KEYS = ("metric", "unit", "max", "min", "scale")
TERM_KEYS = ("metric", "weight", "scale")
STABILITY_KEYS = ("kind", "runs", "min_distance_A", "max_temperature_factor", "reference", "reference_force_rmse_meV_A",
                  "sample_every", "molecules", "max_bond_deviation_A", "h_detach_A", "structures",
                  "min_distance_factor", "max_volume_factor")
RUN_KEYS = ("name", "supercell", "temperature_K", "steps", "timestep_fs", "friction", "seed", "ensemble",
            "pressure_GPa", "taut_fs", "taup_fs", "compressibility_per_GPa")
PICK_KEYS = ("config_types", "per_config_type", "max_structures", "min_atoms")
THROUGHPUT_KEYS = ("supercell", "steps", "warmup_steps", "repeats", "timestep_fs")


def _mapping(value: object, path: Path, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise config_error(path, where, f"expected a mapping, got {value!r}", "see README 'Scorecard reference'")
    check_keys(value, keys, path, where + "." if where else "")
    return value


def _reference(value: object, path: Path, where: str = "stability.reference") -> ReferenceSpec | None:
    from mlipilot.scorecard.reference import calculator_class

    if value is None:
        return None
    if isinstance(value, str):
        value = {"name": value}
    value = _mapping(value, path, where, ("name", "params"))
    name, params = value.get("name"), value.get("params", {}) or {}
    if not isinstance(name, str):
        raise config_error(path, where + ".name", "missing or not a string", "e.g. {name: emt} or {name: pkg.mod:Class}")
    if not isinstance(params, dict):
        raise config_error(path, where + ".params", f"expected a mapping, got {params!r}", "e.g. {sigma: 3.4}")
    try:
        calculator_class(name)
    except (ValueError, ImportError) as e:
        raise config_error(path, where + ".name", str(e), "use an ASE calculator name or package.module:Class") from None
    return ReferenceSpec(name, tuple(sorted(params.items())))


def _get(d: dict, key: str, path: Path, where: str, kind: type | tuple, default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise config_error(path, f"{where}{key}", "missing", f"add '{key}:' (see scorecards/cu_emt.yaml)")
        return default
    value = d[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise config_error(path, f"{where}{key}", f"expected {want}, got {value!r}", f"write a {want}")
    return value


def read_yaml_mapping(path: Path, keys: tuple[str, ...], missing: str, example: str) -> tuple[dict, bytes]:
    """A YAML file's top-level mapping (and its bytes, for the hash), its keys checked: every way it
    can be wrong is one line with the file (and line) and the fix."""
    path = Path(path)
    if not path.is_file():
        raise MLIPilotError(f"{path}: {missing}")
    raw = path.read_bytes()
    try:
        d = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise MLIPilotError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)}) — fix the syntax") from None
    if not isinstance(d, dict):
        raise MLIPilotError(f"{path}: expected a mapping at the top level — see {example}")
    check_keys(d, keys, path)
    return d, raw


# keys only one stability kind reads: under another kind they would be ignored without a word
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "bulk": ("element", "lattice_a", "stability.min_distance_A", "stability.runs[].supercell", "throughput.supercell"),
    "molecules": ("stability.molecules", "stability.max_bond_deviation_A", "stability.h_detach_A"),
    "structures": ("stability.structures", "stability.min_distance_factor", "stability.max_volume_factor"),
}
# wall-clock metrics move with the machine's load: reported, never gated (README "Noise")
INFORMATION_METRICS = {"steps_per_second": "steps_per_cpu_second", "ns_per_day": "us_per_atom_step"}


def _refuse_other_kinds_keys(d: dict, st: dict, kind: str, path: Path) -> None:
    """A key another stability kind reads is refused, naming that kind (a silently ignored bound reads as
    checked when it is not)."""
    def present(key: str) -> list[str]:
        parts = key.split(".")
        if parts[-1:] == ["supercell"] and parts[0] == "stability":
            return [f"stability.runs[{i}].supercell" for i, r in enumerate(st.get("runs") or [])
                    if isinstance(r, dict) and "supercell" in r]
        node: object = d
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return []
            node = node[part]
        return [key]

    for other, keys in KIND_KEYS.items():
        if other == kind:
            continue
        for key in keys:
            for where in present(key):
                alt = {"stability.min_distance_A": " (structures: min_distance_factor)",
                       "element": " (structures: MD starts from your frames)"}.get(key, "")
                raise config_error(path, where, f"only kind {other} reads it, and this scorecard's stability.kind "
                                   f"is {kind}", f"remove it{alt if kind == 'structures' else ''}, or set "
                                   f"stability.kind: {other}")


def load_spec(path: Path) -> ScorecardSpec:
    path = Path(path)
    d, raw = read_yaml_mapping(path, TOP_KEYS, "scorecard spec not found — check the path or the benchmark's "
                               "'scorecard' entry", "scorecards/cu_emt.yaml")

    constraints = []
    for i, c in enumerate(_get(d, "constraints", path, "", list)):
        where = f"constraints[{i}]."
        if not isinstance(c, dict):
            raise config_error(path, where[:-1], "expected a mapping", "write '- {metric: ..., max: ..., unit: ...}'")
        check_keys(c, CONSTRAINT_KEYS, path, where)
        lo, hi = _get(c, "min", path, where, float, None), _get(c, "max", path, where, float, None)
        if lo is None and hi is None:
            raise config_error(path, where + "max", "a constraint needs 'max' or 'min'", "add a bound")
        bound = hi if hi is not None else lo
        scale = _get(c, "scale", path, where, float, abs(bound) if bound else 1.0)
        if scale <= 0:
            raise config_error(path, where + "scale", "must be > 0", "use the bound's magnitude")
        constraints.append(Constraint(_get(c, "metric", path, where, str), _get(c, "unit", path, where, str),
                                      hi, lo, scale))

    terms = []
    comp = _mapping(_get(d, "composite", path, "", dict), path, "composite", ("terms",))
    for i, t in enumerate(_get(comp, "terms", path, "composite.", list)):
        where = f"composite.terms[{i}]."
        t = _mapping(t, path, where[:-1], TERM_KEYS)
        scale = _get(t, "scale", path, where, float)
        if scale <= 0:
            raise config_error(path, where + "scale", "must be > 0", "use a typical value of the metric")
        terms.append(CompositeTerm(_get(t, "metric", path, where, str), _get(t, "weight", path, where, float, 1.0), scale))

    st = _mapping(_get(d, "stability", path, "", dict), path, "stability", STABILITY_KEYS)
    runs = []
    for i, r in enumerate(_get(st, "runs", path, "stability.", list)):
        where = f"stability.runs[{i}]."
        r = _mapping(r, path, where[:-1], RUN_KEYS)
        temp = _get(r, "temperature_K", path, where, (int, float, list))
        temps = (float(temp), float(temp)) if not isinstance(temp, list) else tuple(float(x) for x in temp)
        if len(temps) != 2:
            raise config_error(path, where + "temperature_K", "expected a number or [start, end]", "e.g. [300, 3000]")
        ensemble = _get(r, "ensemble", path, where, str, "nvt")
        if ensemble not in [str(e) for e in Ensemble]:
            raise config_error(path, where + "ensemble", f"unknown ensemble {ensemble!r}",
                               f"use one of {', '.join(map(str, Ensemble))}")
        runs.append(MDRun(_get(r, "name", path, where, str), _get(r, "supercell", path, where, int, 0), temps,
                          _get(r, "steps", path, where, int), _get(r, "timestep_fs", path, where, float, 2.0),
                          _get(r, "friction", path, where, float, 0.02), _get(r, "seed", path, where, int, i),
                          Ensemble(ensemble), _get(r, "pressure_GPa", path, where, float, 0.0),
                          _get(r, "taut_fs", path, where, float, 100.0), _get(r, "taup_fs", path, where, float, 500.0),
                          _get(r, "compressibility_per_GPa", path, where, float, 0.01)))
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS

    kind = _get(st, "kind", path, "stability.", str, "bulk")
    if kind not in STABILITY_KINDS:
        raise config_error(path, "stability.kind", f"unknown kind {kind!r}", f"use one of {', '.join(STABILITY_KINDS)}")
    _refuse_other_kinds_keys(d, st, kind, path)
    if kind != "structures" and any(r.ensemble == Ensemble.NPT for r in runs):
        raise config_error(path, "stability.runs", "ensemble npt needs kind: structures", "set stability.kind: structures")
    pick = _mapping(_get(st, "structures", path, "stability.", dict, {}), path, "stability.structures", PICK_KEYS)
    globs = _get(pick, "config_types", path, "stability.structures.", (list, str), ["*"])
    structures = StructurePick(tuple([globs] if isinstance(globs, str) else map(str, globs)),
                               _get(pick, "per_config_type", path, "stability.structures.", int, 1),
                               _get(pick, "max_structures", path, "stability.structures.", int, 4),
                               _get(pick, "min_atoms", path, "stability.structures.", int, 0))
    stability = StabilitySpec(
        tuple(runs),
        _get(st, "min_distance_A", path, "stability.", float, 0.5),
        _get(st, "max_temperature_factor", path, "stability.", float),
        _reference(st.get("reference"), path),
        _get(st, "reference_force_rmse_meV_A", path, "stability.", float, None),
        _get(st, "sample_every", path, "stability.", int, 50),
        kind,
        _get(st, "molecules", path, "stability.", int, 4),
        _get(st, "max_bond_deviation_A", path, "stability.", float, 0.5),
        _get(st, "h_detach_A", path, "stability.", float, 2.5),
        structures,
        _get(st, "min_distance_factor", path, "stability.", float, 0.5),
        _get(st, "max_volume_factor", path, "stability.", float, 1.5),
    )
    tp = _mapping(_get(d, "throughput", path, "", dict), path, "throughput", THROUGHPUT_KEYS)
    throughput = ThroughputSpec(_get(tp, "supercell", path, "throughput.", int, 0),
                                _get(tp, "steps", path, "throughput.", int),
                                _get(tp, "warmup_steps", path, "throughput.", int, 5),
                                _get(tp, "repeats", path, "throughput.", int, 3),
                                _get(tp, "timestep_fs", path, "throughput.", float, 2.0))
    spec = ScorecardSpec(
        name=_get(d, "name", path, "", str),
        path=path,
        element=_get(d, "element", path, "", str, ... if kind == "bulk" else None),
        lattice_a=_get(d, "lattice_a", path, "", float, ... if kind == "bulk" else None),
        constraints=tuple(constraints),
        composite=tuple(terms),
        noise_margin=_get(d, "noise_margin", path, "", float, 0.02),
        stability=stability,
        throughput=throughput,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    from mlipilot.scorecard.metrics import (  # late: torch-free modules only
        parse_metric,
        unknown_metric_fix,
    )

    for where, name in [(f"constraints[{i}].metric", c.metric) for i, c in enumerate(constraints)] + \
                       [(f"composite.terms[{i}].metric", t.metric) for i, t in enumerate(terms)]:
        if parse_metric(name) is None:
            raise config_error(path, where, f"unknown metric {name!r}", unknown_metric_fix(name))
        if name in INFORMATION_METRICS:
            raise config_error(path, where, f"{name} is wall-clock information (it moves with the machine's load), "
                               "not a metric to gate or rank on", f"use {INFORMATION_METRICS[name]} (CPU time), "
                               "or drop it: every trial reports it anyway")
    return spec
