"""MD stability checks: non-finite values, atoms too close, temperature runaway, and the
model's force error against the reference calculator on frames sampled along the trajectory.

An under-trained model was seen to pass fixed-temperature runs and fail only the heating ramp
and the reference-force check, so all of them run.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.scorecard.md_driver import MDStep, fcc_cell, langevin
from mlipilot.scorecard.spec import ScorecardSpec


def _min_distance(atoms) -> float:
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def reference_check(s: MDStep, ref: Calculator, spec: ScorecardSpec, errors: list[float]) -> str | None:
    """The model's force RMSE against the reference calculator on this MD frame (appended to
    `errors`); the failure reason when it is above the scorecard's bound."""
    st = spec.stability
    probe = s.atoms.copy()
    probe.calc = ref
    rmse = float(np.sqrt(np.mean(((s.forces - probe.get_forces()) * 1000.0) ** 2)))
    errors.append(rmse)
    if st.reference_force_rmse_meV_A is not None and rmse > st.reference_force_rmse_meV_A:
        return (f"force error vs {st.reference} {rmse:.0f} meV/Å at step {s.step}"
                f" (bound {st.reference_force_rmse_meV_A:.0f})")
    return None


def throughput_structure(spec: ScorecardSpec, frames: list[Atoms]) -> Atoms:
    return fcc_cell(spec.element, spec.lattice_a, spec.throughput.supercell)


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms] | None = None,
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    """fcc supercells of the scorecard's element; `frames` is unused (the cells are built)."""
    st = spec.stability
    ref = st.reference.make() if st.reference else None
    failed, min_dist, max_ratio, ref_errs = 0, np.inf, 0.0, []
    runs = {}
    for run in st.runs:
        atoms = fcc_cell(spec.element, spec.lattice_a, run.supercell)
        reason, steps_done = None, 0
        try:
            for s in langevin(atoms, calc, run.temperature_K, run.steps, run.timestep_fs,
                              run.friction, run.seed):
                steps_done = s.step
                if not (np.isfinite(s.energy) and np.isfinite(s.forces).all()):
                    reason = f"non-finite energy/forces at step {s.step}"
                    break
                if s.step % 10 == 0 or s.step == run.steps:
                    d = _min_distance(s.atoms)
                    min_dist = min(min_dist, d)
                    if d < st.min_distance_A:
                        reason = f"atoms {d:.2f} Å apart at step {s.step} (bound {st.min_distance_A} Å)"
                        break
                ratio = s.temperature_K / s.target_K
                max_ratio = max(max_ratio, ratio)
                if ratio > st.max_temperature_factor:
                    reason = (f"temperature runaway: {s.temperature_K:.0f} K vs target {s.target_K:.0f} K"
                              f" at step {s.step}")
                    break
                if ref is not None and s.step % st.sample_every == 0:
                    reason = reference_check(s, ref, spec, ref_errs)
                    if reason:
                        break
        except Exception as e:  # a model that crashes the integrator is unstable, not a harness bug
            reason = f"MD raised {type(e).__name__}: {e}"
        failed += reason is not None
        runs[run.name] = {"ok": reason is None, "steps": steps_done, "reason": reason}
        progress(f"  md {run.name}: {'ok' if reason is None else 'FAILED: ' + reason} ({steps_done}/{run.steps} steps)")
    return {
        "md_failed_runs": float(failed),
        "md_min_distance": float(min_dist) if np.isfinite(min_dist) else None,
        "md_max_temperature_ratio": float(max_ratio),
        "md_reference_force_rmse": float(max(ref_errs)) if ref_errs else None,
        "md_runs": runs,
    }
