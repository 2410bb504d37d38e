"""The worst holdout frame's energy error per atom: an RMSE can hide one configuration the model
gets badly wrong (a surface, a defect), which is what breaks an MD run."""

from __future__ import annotations

UNIT = "meV/atom"


def compute(pred, energy_key: str = "REF_energy") -> float:
    """`pred`: the scorer's Predictions on the holdout (frames with their labels, the model's values)."""
    return max((abs(e - atoms.info[energy_key]) / len(atoms) * 1000.0 for atoms, e in zip(pred.frames, pred.energy)),
               default=0.0)
