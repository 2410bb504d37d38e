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

from mlipilot.errors import config_error
from mlipilot.schema import Field, ListOf, NoneType, Table, read_file


@dataclass(frozen=True)
class Bound:
    """A lower and/or upper bound on one quantity: what a scorecard constraint and a validation
    check both gate on (one idea, one class)."""
    max: float | None = None
    min: float | None = None

    def excess(self, value: float | None) -> float | None:
        """How far value lies outside the bound (0 inside); None when there is no value."""
        if value is None or value != value:
            return None
        if self.max is not None and value > self.max:
            return value - self.max
        if self.min is not None and value < self.min:
            return self.min - value
        return 0.0

    def ok(self, value: float | None) -> bool:
        return self.excess(value) == 0.0

    def __str__(self) -> str:
        parts = ([f"≥ {self.min:g}"] if self.min is not None else []) + ([f"≤ {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class Constraint:
    metric: str
    unit: str
    max: float | None = None
    min: float | None = None
    scale: float = 1.0  # divides the excess so violations of different metrics add up

    @property
    def bound(self) -> Bound:
        return Bound(self.max, self.min)

    def violation(self, value: float | None) -> float:
        """Normalised amount by which value breaks the bound (0 when satisfied)."""
        if value is None or value != value or value in (float("inf"), float("-inf")):
            return 1e6  # a missing or non-finite metric is the worst violation, but finite for JSON
        return self.bound.excess(value) / self.scale


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

    @classmethod
    def read(cls, value: dict | None) -> "ReferenceSpec | None":
        """From the schema's reading of a `reference:` field (see reference_field)."""
        return cls(value["name"], tuple(sorted((value["params"] or {}).items()))) if value else None

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
class PropertiesSpec:
    """`properties:` — the cells of the property metrics (mlipilot.scorecard.properties) and, for a
    reference that is DFT or experiment, its values (quantity -> value: a Å, B/C11/C12/C44/C_prime GPa, E_vac eV,
    E_surf_<facet> J/m²); missing ones are computed with stability.reference at init and sealed."""
    strain: float = 0.01
    vacancy_supercell: int = 2  # 4 n³ atoms: 32
    facets: tuple[str, ...] = ("111",)
    surface_layers: int = 5
    reference_values: tuple[tuple[str, float], ...] = ()


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
    properties: PropertiesSpec = PropertiesSpec()

    def metric_names(self) -> list[str]:
        return [c.metric for c in self.constraints] + [t.metric for t in self.composite]


def _metric_check(name: str) -> tuple[str, str] | None:
    """A metric a scorecard may gate or rank on: a known one, and not wall-clock information."""
    from mlipilot.scorecard.metrics import parse_metric, unknown_metric_fix  # late: torch-free modules only

    if parse_metric(name) is None:
        return f"unknown metric {name!r}", unknown_metric_fix(name)
    if name in INFORMATION_METRICS:
        return (f"{name} is wall-clock information (it moves with the machine's load), not a metric to gate or rank "
                f"on", f"use {INFORMATION_METRICS[name]} (CPU time), or drop it: every trial reports it anyway")
    return None


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _pair(v: object) -> object:  # temperature_K: a number is a fixed temperature, [start, end] a ramp
    return [v, v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _stability_kinds():
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS

    return STABILITY_KINDS


def _references():
    from mlipilot.scorecard.reference import REFERENCES

    return REFERENCES


def reference_field() -> Field:
    """`reference:` — an ASE calculator name, or {name: emt | package.module:Class, params: {...}}
    (shared with the validation spec)."""
    return Field(Table({"name": Field(str, fix="e.g. {name: emt} or {name: pkg.mod:Class}", choices=_references()),
                        "params": Field((dict, NoneType), {}, fix="e.g. {sigma: 3.4}")}, missing="e.g. {name: emt}"),
                 None, before=lambda v: {"name": v} if isinstance(v, str) else v)


def _schema() -> Table:
    """scorecard.yaml, declared: what a key may hold and its default (README 'Scorecard reference')."""
    see = "add '{key}:' (see scorecards/cu_emt.yaml)"
    run = Table({
        "name": Field(str), "supercell": Field(int, 0),
        "temperature_K": Field(ListOf(float), fix="e.g. [300, 3000]", before=_pair,
                               check=lambda t: None if len(t) == 2 else "expected a number or [start, end]"),
        "steps": Field(int), "timestep_fs": Field(float, 2.0), "friction": Field(float, 0.02),
        "seed": Field(int, None),  # None: the run's index
        "ensemble": Field(str, "nvt", choices=tuple(map(str, Ensemble))),
        "pressure_GPa": Field(float, 0.0), "taut_fs": Field(float, 100.0), "taup_fs": Field(float, 500.0),
        "compressibility_per_GPa": Field(float, 0.01)}, missing=see)
    pick = Table({"config_types": Field(ListOf(str), ["*"], before=lambda v: [v] if isinstance(v, str) else v),
                  "per_config_type": Field(int, 1), "max_structures": Field(int, 4), "min_atoms": Field(int, 0)},
                 missing=see)
    stability = Table({
        "kind": Field(str, "bulk", choices=_stability_kinds()),
        "runs": Field(ListOf(run)), "min_distance_A": Field(float, 0.5), "max_temperature_factor": Field(float),
        "reference": reference_field(), "reference_force_rmse_meV_A": Field(float, None),
        "sample_every": Field(int, 50), "molecules": Field(int, 4), "max_bond_deviation_A": Field(float, 0.5),
        "h_detach_A": Field(float, 2.5), "structures": Field(pick, pick.read({}, "")),
        "min_distance_factor": Field(float, 0.5), "max_volume_factor": Field(float, 1.5)}, missing=see)
    constraint = Table({
        "metric": Field(str, check=_metric_check), "unit": Field(str),
        "max": Field(float, None), "min": Field(float, None),
        "scale": Field(float, None, fix="use the bound's magnitude", check=_positive)},
        missing=see, fix="write '- {metric: ..., max: ..., unit: ...}'")
    term = Table({"metric": Field(str, check=_metric_check), "weight": Field(float, 1.0), "unit": Field(str, None),
                  "scale": Field(float, fix="use a typical value of the metric", check=_positive)}, missing=see)
    return Table({
        "name": Field(str), "element": Field(str, None), "lattice_a": Field(float, None),
        "constraints": Field(ListOf(constraint)),
        "composite": Field(Table({"terms": Field(ListOf(term))}, missing=see)),
        "noise_margin": Field(float, 0.02),
        "properties": Field(Table({
            "strain": Field(float, 0.01, check=lambda v: None if 0 < v <= 0.05 else "give a strain in (0, 0.05]"),
            "vacancy_supercell": Field(int, 2, check=lambda v: None if 2 <= v <= 4 else "give 2, 3 or 4"),
            "facets": Field(ListOf(str), ["111"], check=lambda f: None if f and set(f) <= {"111", "100", "110"}
                            else "use facets of 111, 100, 110"),
            "surface_layers": Field(int, 5, check=_positive),
            "reference_values": Field((dict, NoneType), {}, fix="e.g. {B: 140.0, C11: 176.2} (GPa)")},
            missing=see), None),
        "stability": Field(stability), "throughput": Field(Table({
            "supercell": Field(int, 0), "steps": Field(int), "warmup_steps": Field(int, 5),
            "repeats": Field(int, 3), "timestep_fs": Field(float, 2.0)}, missing=see))},
        missing=see, fix="see README 'Scorecard reference'")


# keys only one stability kind reads: under another kind they would be ignored without a word
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "bulk": ("element", "lattice_a", "stability.min_distance_A", "stability.runs[].supercell", "throughput.supercell"),
    "molecules": ("stability.molecules", "stability.max_bond_deviation_A", "stability.h_detach_A"),
    "structures": ("stability.structures", "stability.min_distance_factor", "stability.max_volume_factor"),
}
# property metrics and the quantities a scorecard may give reference values for (mlipilot.scorecard.properties)
PROPERTY_METRIC_NAMES = ("lattice_constant_error", "bulk_modulus_error", "c11_error", "c12_error", "c44_error",
                         "elastic_error_max", "vacancy_formation_error", "surface_energy_error_max")
PROPERTY_QUANTITIES = ("a", "B", "C11", "C12", "C44", "C_prime", "E_vac")
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


def _scorer_unit(path: Path, where: str, metric: str, given: str) -> tuple[str, float]:
    """A constraint's or composite term's `unit:` -> (the unit the scorer measures the metric in, the factor
    a bound written in `given` is multiplied by): eV/atom is 1000 meV/atom; a unit of another quantity is refused."""
    from mlipilot.scorecard.metrics import parse_metric
    from mlipilot.units import convert_bound

    scorer = parse_metric(metric).unit
    factor, fix = convert_bound(metric, given, scorer)
    if factor is None:
        raise config_error(path, where, f"unit {given!r} is not a unit of {metric} (measured in {scorer})", fix)
    return scorer, factor


def _scaled(x: float, factor: float) -> float:
    return x if factor == 1.0 else float(f"{x * factor:.12g}")


def load_spec(path: Path) -> ScorecardSpec:
    path = Path(path)
    d, raw = read_file(path, "scorecard spec not found — check the path or the benchmark's 'scorecard' entry",
                       "scorecards/cu_emt.yaml")
    raw_st = d.get("stability")  # first: a key of another kind is named as such, whatever its value
    if isinstance(raw_st, dict) and raw_st.get("kind", "bulk") in _stability_kinds():
        _refuse_other_kinds_keys(d, raw_st, raw_st.get("kind", "bulk"), path)
    v = _schema().read(d, path)
    st = v["stability"]
    kind = st["kind"]
    runs = tuple(MDRun(**{**r, "temperature_K": tuple(r["temperature_K"]), "ensemble": Ensemble(r["ensemble"]),
                          "seed": i if r["seed"] is None else r["seed"]}) for i, r in enumerate(st["runs"]))
    if kind != "structures" and any(r.ensemble == Ensemble.NPT for r in runs):
        raise config_error(path, "stability.runs", "ensemble npt needs kind: structures", "set stability.kind: structures")
    for key in ("element", "lattice_a"):
        if kind == "bulk" and v[key] is None:
            raise config_error(path, key, "missing", f"add '{key}:' (see scorecards/cu_emt.yaml)")
    constraints = []
    for i, c in enumerate(v["constraints"]):
        if c["min"] is None and c["max"] is None:
            raise config_error(path, f"constraints[{i}].max", "a constraint needs 'max' or 'min'", "add a bound")
        unit, f = _scorer_unit(path, f"constraints[{i}].unit", c["metric"], c["unit"])
        lo, hi, scale = (None if x is None else _scaled(x, f) for x in (c["min"], c["max"], c["scale"]))
        bound = hi if hi is not None else lo
        constraints.append(Constraint(c["metric"], unit, hi, lo,
                                      scale if scale is not None else abs(bound) if bound else 1.0))
    # the schema's keys are the records' attribute names: a new key is one Field line and one attribute
    stability = StabilitySpec(**{**st, "runs": runs, "reference": ReferenceSpec.read(st["reference"]), "structures":
                                 StructurePick(**{**st["structures"],
                                                  "config_types": tuple(st["structures"]["config_types"])})})
    props = v["properties"] or {}
    prop_metrics = [m for m in (c.metric for c in constraints) if m in PROPERTY_METRIC_NAMES] + \
        [t["metric"] for t in v["composite"]["terms"] if t["metric"] in PROPERTY_METRIC_NAMES]
    if prop_metrics and kind != "bulk":
        raise config_error(path, "constraints", f"{prop_metrics[0]} is a property of an fcc element (kind bulk), and "
                           f"this scorecard's stability.kind is {kind}", "remove it (`mlipilot validate`'s "
                           "structure_volume and structure_bulk_modulus measure your own structures)")
    bad = [k for k, x in (props.get("reference_values") or {}).items()
           if k not in PROPERTY_QUANTITIES and not str(k).startswith("E_surf_") or not isinstance(x, (int, float))]
    if bad:
        raise config_error(path, f"properties.reference_values.{bad[0]}", "unknown quantity or not a number",
                           f"use {', '.join(PROPERTY_QUANTITIES)} or E_surf_<facet>, each a number")
    properties = PropertiesSpec(**{**PropertiesSpec().__dict__, **{k: v_ for k, v_ in props.items() if v_ is not None},
                                   "facets": tuple(props.get("facets") or ("111",)),
                                   "reference_values": tuple(sorted((props.get("reference_values") or {}).items()))})
    return ScorecardSpec(
        name=v["name"],
        path=path,
        element=v["element"],
        lattice_a=v["lattice_a"],
        constraints=tuple(constraints),
        composite=tuple(CompositeTerm(t["metric"], t["weight"], t["scale"] if t["unit"] is None else _scaled(
            t["scale"], _scorer_unit(path, f"composite.terms[{i}].unit", t["metric"], t["unit"])[1]))
            for i, t in enumerate(v["composite"]["terms"])),
        noise_margin=v["noise_margin"],
        stability=stability,
        throughput=ThroughputSpec(**v["throughput"]),
        sha256=hashlib.sha256(raw).hexdigest(),
        properties=properties,
    )
