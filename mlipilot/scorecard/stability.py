"""Stability kind `bulk`: fcc supercells of the scorecard's element. Checks: non-finite values, atoms
too close (Å), temperature runaway, and the model's force error against the reference calculator on
frames sampled along the trajectory.

An under-trained model was seen to pass fixed-temperature runs and fail only the heating ramp
and the reference-force check, so all of them run.
"""

from __future__ import annotations

from typing import Callable

from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.md import MDRun, MinDistance, NonFinite, ReferenceForce, StepCheck, TemperatureRunaway, fcc_cell
from mlipilot.scorecard.spec import ScorecardSpec
from mlipilot.scorecard.stability_kinds import STABILITY_KINDS, MDTask, protocol, worst

MIN_DISTANCE_EVERY = 10  # steps between closest-approach checks (a full distance matrix per step would dominate)


def throughput_structure(spec: ScorecardSpec, frames: list[Atoms]) -> Atoms:
    return fcc_cell(spec.element, spec.lattice_a, spec.throughput.supercell)


def md_tasks(spec: ScorecardSpec, frames: list[Atoms]) -> list[MDTask]:
    """One per run, on its fcc supercell; `frames` is unused (the cells are built)."""
    return [MDTask(run.name, fcc_cell(spec.element, spec.lattice_a, run.supercell), protocol(run), run,
                   throughput=run.supercell == spec.throughput.supercell) for run in spec.stability.runs]


def reference_check(spec: ScorecardSpec) -> list[StepCheck]:
    st = spec.stability
    if st.reference is None:
        return []
    return [ReferenceForce(st.reference.make(), st.reference_force_rmse_meV_A, st.sample_every, str(st.reference))]


def checks(spec: ScorecardSpec, task: MDTask) -> list[StepCheck]:
    st = spec.stability
    return [NonFinite(), MinDistance(st.min_distance_A, MIN_DISTANCE_EVERY),
            TemperatureRunaway(st.max_temperature_factor), *reference_check(spec)]


def summarize(spec: ScorecardSpec, runs: dict[str, MDRun]) -> dict[str, float | None]:
    return {"md_min_distance": worst(runs, "min_distance", min),
            "md_max_temperature_ratio": worst(runs, "max_temperature_ratio", max, 0.0),
            "md_reference_force_rmse": worst(runs, "reference_force_rmse", max)}


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms] | None = None,
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    return STABILITY_KINDS["bulk"].metrics(calc, spec, frames or [], progress)
