"""The scorecard spec (``scorecards/*.yaml``): what is measured, the bounds, and the composite.

Loading validates every field so a typo fails at ``mlipilot init``/``trial`` with the file,
the field and the fix, never halfway through a trial.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlipilot.errors import config_error, MLIPilotError


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


@dataclass(frozen=True)
class MDRun:
    name: str
    supercell: int  # repeats of the 4-atom conventional fcc cell per axis (bulk); unused for molecules
    temperature_K: tuple[float, float]  # (start, end): equal for NVT, a ramp otherwise
    steps: int
    timestep_fs: float = 2.0
    friction: float = 0.02  # Langevin friction in 1/fs-units of ASE (per time unit)
    seed: int = 0


@dataclass(frozen=True)
class StabilitySpec:
    runs: tuple[MDRun, ...]
    min_distance_A: float
    max_temperature_factor: float  # instantaneous T above factor × target is a runaway
    reference: str | None  # reference calculator for the force check on sampled frames
    reference_force_rmse_meV_A: float | None
    sample_every: int
    kind: str = "bulk"  # bulk: fcc supercells of `element`; molecules: holdout molecules in vacuum
    molecules: int = 4  # how many holdout molecules (largest unseen ones first)
    max_bond_deviation_A: float = 0.5  # a bonded pair stretching or shrinking more than this breaks topology
    h_detach_A: float = 2.5  # an H farther than this from every other atom has left its molecule


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


def load_spec(path: Path) -> ScorecardSpec:
    path = Path(path)
    if not path.is_file():
        raise MLIPilotError(f"{path}: scorecard spec not found — check the path or the benchmark's 'scorecard' entry")
    raw = path.read_bytes()
    try:
        d = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise MLIPilotError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)}) — fix the syntax") from None
    if not isinstance(d, dict):
        raise MLIPilotError(f"{path}: expected a mapping at the top level — see scorecards/cu_emt.yaml")

    constraints = []
    for i, c in enumerate(_get(d, "constraints", path, "", list)):
        where = f"constraints[{i}]."
        if not isinstance(c, dict):
            raise config_error(path, where[:-1], "expected a mapping", "write '- {metric: ..., max: ..., unit: ...}'")
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
    comp = _get(d, "composite", path, "", dict)
    for i, t in enumerate(_get(comp, "terms", path, "composite.", list)):
        where = f"composite.terms[{i}]."
        scale = _get(t, "scale", path, where, float)
        if scale <= 0:
            raise config_error(path, where + "scale", "must be > 0", "use a typical value of the metric")
        terms.append(CompositeTerm(_get(t, "metric", path, where, str), _get(t, "weight", path, where, float, 1.0), scale))

    st = _get(d, "stability", path, "", dict)
    runs = []
    for i, r in enumerate(_get(st, "runs", path, "stability.", list)):
        where = f"stability.runs[{i}]."
        temp = _get(r, "temperature_K", path, where, (int, float, list))
        temps = (float(temp), float(temp)) if not isinstance(temp, list) else tuple(float(x) for x in temp)
        if len(temps) != 2:
            raise config_error(path, where + "temperature_K", "expected a number or [start, end]", "e.g. [300, 3000]")
        runs.append(MDRun(_get(r, "name", path, where, str), _get(r, "supercell", path, where, int, 0), temps,
                          _get(r, "steps", path, where, int), _get(r, "timestep_fs", path, where, float, 2.0),
                          _get(r, "friction", path, where, float, 0.02), _get(r, "seed", path, where, int, i)))
    kind = _get(st, "kind", path, "stability.", str, "bulk")
    if kind not in ("bulk", "molecules"):
        raise config_error(path, "stability.kind", f"unknown kind {kind!r}", "use bulk or molecules")
    stability = StabilitySpec(
        tuple(runs),
        _get(st, "min_distance_A", path, "stability.", float, 0.5),
        _get(st, "max_temperature_factor", path, "stability.", float),
        _get(st, "reference", path, "stability.", str, None),
        _get(st, "reference_force_rmse_meV_A", path, "stability.", float, None),
        _get(st, "sample_every", path, "stability.", int, 50),
        kind,
        _get(st, "molecules", path, "stability.", int, 4),
        _get(st, "max_bond_deviation_A", path, "stability.", float, 0.5),
        _get(st, "h_detach_A", path, "stability.", float, 2.5),
    )
    tp = _get(d, "throughput", path, "", dict)
    throughput = ThroughputSpec(_get(tp, "supercell", path, "throughput.", int, 0),
                                _get(tp, "steps", path, "throughput.", int),
                                _get(tp, "warmup_steps", path, "throughput.", int, 5),
                                _get(tp, "repeats", path, "throughput.", int, 3),
                                _get(tp, "timestep_fs", path, "throughput.", float, 2.0))
    spec = ScorecardSpec(
        name=_get(d, "name", path, "", str),
        path=path,
        element=_get(d, "element", path, "", str, None if kind == "molecules" else ...),
        lattice_a=_get(d, "lattice_a", path, "", float, None if kind == "molecules" else ...),
        constraints=tuple(constraints),
        composite=tuple(terms),
        noise_margin=_get(d, "noise_margin", path, "", float, 0.02),
        stability=stability,
        throughput=throughput,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    from mlipilot.scorecard.metrics import KNOWN_METRICS  # late: metrics import torch-free modules only

    for where, name in [(f"constraints[{i}].metric", c.metric) for i, c in enumerate(constraints)] + \
                       [(f"composite.terms[{i}].metric", t.metric) for i, t in enumerate(terms)]:
        if name not in KNOWN_METRICS and not name.startswith(("energy_rmse_", "force_rmse_")):
            raise config_error(path, where, f"unknown metric {name!r}",
                               f"use one of {', '.join(sorted(KNOWN_METRICS))}")
    return spec
