"""Names and units of the metrics a scorecard may constrain, and how a name is parsed.

Besides the fixed names below, a scorecard may name
- ``energy_rmse_<group>`` / ``force_rmse_<group>`` (also ``_mae``): the holdout frames whose
  ``config_type`` matches ``<group>``, a glob pattern (``energy_rmse_slab*``);
- ``force_rmse_<El>`` / ``force_mae_<El>``: force components on atoms of one element;
- ``energy_rmse_max_group`` / ``force_rmse_max_group``: the worst config_type.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ase.data import chemical_symbols

from mlipilot.registry import nearest

KNOWN_METRICS: dict[str, str] = {
    "energy_rmse": "meV/atom",
    "force_rmse": "meV/Å",
    "energy_mae": "meV/atom",
    "force_mae": "meV/Å",
    "stress_rmse": "meV/Å³",  # needs REF_stress in the holdout (Voigt 6 or 3x3, eV/Å³)
    "energy_rmse_max_group": "meV/atom",
    "force_rmse_max_group": "meV/Å",
    "md_failed_runs": "count",
    "md_min_distance": "Å",
    "md_min_distance_ratio": "1",  # closest pair / (covalent radius sum): portable across elements
    "md_max_temperature_ratio": "1",
    "md_reference_force_rmse": "meV/Å",
    "md_max_bond_deviation": "Å",
    "md_max_volume_ratio": "1",  # NPT: max(V/V0, V0/V)
    "steps_per_second": "steps/s",  # wall clock: moves with the machine's load, kept as information
    "steps_per_cpu_second": "steps/CPU-s",  # the single-threaded scorer's process CPU time
    "us_per_atom_step": "µs/atom/step",  # CPU time per atom per MD step: portable across system sizes
    "ns_per_day": "ns/day",
    "cpu_seconds_per_step": "s",
    # steps/CPU-s over that of a fixed reference MACE timed in the same job (scorecard.throughput):
    # a throughput bound that means the same on any CPU
    "throughput_ratio": "1",
    # property metrics (mlipilot.scorecard.properties): the model's crystal physics against the sealed reference
    "lattice_constant_error": "%",
    "bulk_modulus_error": "%",
    "c11_error": "%",
    "c12_error": "%",
    "c44_error": "%",
    "elastic_error_max": "%",  # the worst of C11, C12, C44
    "vacancy_formation_error": "eV",
    "surface_energy_error_max": "%",  # the worst of properties.facets
}

GROUP_QUANTITIES = ("energy_rmse", "force_rmse", "energy_mae", "force_mae")
ELEMENT_QUANTITIES = ("force_rmse", "force_mae")


class MetricKind(StrEnum):
    FIXED = "fixed"
    PLUGIN = "plugin"  # computed by a module in metric_plugins/
    ELEMENT = "element"  # per-element force error
    GROUP = "group"  # config_type pattern


@dataclass(frozen=True)
class MetricRef:
    name: str
    kind: MetricKind
    quantity: str  # energy_rmse, force_rmse, ... for ELEMENT and GROUP; the name itself otherwise
    selector: str = ""  # the element symbol or the config_type glob pattern

    @property
    def unit(self) -> str:
        if self.kind == MetricKind.PLUGIN:
            from mlipilot.scorecard.metric_plugins import plugin

            return plugin(self.name).UNIT
        return KNOWN_METRICS[self.quantity if self.kind != MetricKind.FIXED else self.name]


def parse_metric(name: str) -> MetricRef | None:
    """What a metric name refers to; None when it can't be a metric at all."""
    from mlipilot.scorecard.metric_plugins import METRIC_PLUGINS

    if name in KNOWN_METRICS:
        return MetricRef(name, MetricKind.FIXED, name)
    if name in METRIC_PLUGINS:
        return MetricRef(name, MetricKind.PLUGIN, name)
    for q in sorted(GROUP_QUANTITIES, key=len, reverse=True):
        if name.startswith(q + "_") and len(name) > len(q) + 1:
            rest = name[len(q) + 1:]
            if q in ELEMENT_QUANTITIES and rest in chemical_symbols[1:]:
                return MetricRef(name, MetricKind.ELEMENT, q, rest)
            return MetricRef(name, MetricKind.GROUP, q, rest)
    return None


def unknown_metric_fix(name: str) -> str:
    from mlipilot.scorecard.metric_plugins import METRIC_PLUGINS

    names = [*KNOWN_METRICS, *METRIC_PLUGINS]
    near = nearest(name, names)
    hint = f"did you mean '{near}'? " if near else ""
    return f"{hint}use one of {', '.join(sorted(names))}, <quantity>_<config_type glob> or force_rmse_<Element>"
