"""The worst holdout frame's energy error per atom: an RMSE can hide one configuration the model
gets badly wrong (a surface, a defect), which is what breaks an MD run."""

from __future__ import annotations

UNIT = "meV/atom"


def compute(calc, frames, energy_key: str = "REF_energy") -> float:
    worst = 0.0
    for atoms in frames:
        probe = atoms.copy()
        probe.calc = calc
        worst = max(worst, abs(probe.get_potential_energy() - atoms.info[energy_key]) / len(atoms) * 1000.0)
    return worst
