"""Energy, force and stress errors of a model against reference labels: overall, per config_type,
per element, the worst config_type, and any config_type glob the scorecard names."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from mlipilot.scorecard.metrics import MetricKind, parse_metric


def _rmse(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def _voigt(stress: object) -> np.ndarray:
    """REF_stress as written by users: Voigt 6 or a 3x3 (9) matrix, eV/Å³ in ASE's sign convention."""
    s = np.asarray(stress, dtype=float)
    return full_3x3_to_voigt_6_stress(s.reshape(3, 3)) if s.size == 9 else s.reshape(6)


@dataclass(frozen=True)
class Predictions:
    """The model's predictions on the holdout, made once and shared by every accuracy metric and
    metric plug-in (`stress[i]` is None where frame i has no reference stress or is not periodic)."""
    frames: list[Atoms]
    energy: list[float]  # eV
    forces: list[np.ndarray]  # eV/Å
    stress: list[np.ndarray | None]  # Voigt 6, eV/Å³


def predict(calc: Calculator, frames: list[Atoms], stress_key: str = "REF_stress") -> Predictions:
    energy, forces, stress = [], [], []
    for atoms in frames:
        probe = atoms.copy()
        probe.calc = calc
        energy.append(float(probe.get_potential_energy()))
        forces.append(probe.get_forces())
        stress.append(probe.get_stress(voigt=True) if stress_key in atoms.info and atoms.pbc.all() else None)
    return Predictions(list(frames), energy, forces, stress)


def accuracy_metrics(calc: Calculator | Predictions, frames: list[Atoms], metric_names: Iterable[str] = (),
                     energy_key: str = "REF_energy", forces_key: str = "REF_forces",
                     stress_key: str = "REF_stress") -> dict[str, float]:
    """RMSE/MAE of energy per atom (meV/atom), force components (meV/Å) and, where every periodic
    frame has a reference stress, stress components (meV/Å³). `calc` may be the Predictions already
    made on `frames` (the scorer predicts the holdout once)."""
    pred = calc if isinstance(calc, Predictions) else predict(calc, frames, stress_key)
    per_frame = []  # (config_type, energy error, force errors (n,3), numbers)
    stress_err = []
    for atoms, e, f, st in zip(frames, pred.energy, pred.forces, pred.stress):
        e_err = (e - atoms.info[energy_key]) / len(atoms) * 1000.0
        f_err = (f - atoms.arrays[forces_key]) * 1000.0
        per_frame.append((str(atoms.info.get("config_type", "default")), e_err, f_err, atoms.numbers))
        if st is not None:
            stress_err.append((st - _voigt(atoms.info[stress_key])) * 1000.0)

    def errors(rows) -> dict[str, float]:
        e = np.asarray([r[1] for r in rows])
        f = np.concatenate([r[2].ravel() for r in rows])
        return {"energy_rmse": _rmse(e), "force_rmse": _rmse(f),
                "energy_mae": float(np.mean(np.abs(e))), "force_mae": float(np.mean(np.abs(f)))}

    out: dict[str, float] = errors(per_frame)
    types = sorted({r[0] for r in per_frame})
    for ct in types:
        g = errors([r for r in per_frame if r[0] == ct])
        out[f"energy_rmse_{ct}"], out[f"force_rmse_{ct}"] = g["energy_rmse"], g["force_rmse"]
    out["energy_rmse_max_group"] = max(out[f"energy_rmse_{ct}"] for ct in types)
    out["force_rmse_max_group"] = max(out[f"force_rmse_{ct}"] for ct in types)
    numbers = np.concatenate([r[3] for r in per_frame])
    forces = np.concatenate([r[2] for r in per_frame])
    for z in sorted(set(numbers.tolist())):
        f = forces[numbers == z].ravel()
        out[f"force_rmse_{chemical_symbols[z]}"] = _rmse(f)
        out[f"force_mae_{chemical_symbols[z]}"] = float(np.mean(np.abs(f)))
    if stress_err and len(stress_err) == sum(a.pbc.all() for a in frames):
        out["stress_rmse"] = _rmse(np.concatenate(stress_err))
    for name in metric_names:  # glob groups the scorecard names (a plain config_type is already there)
        ref = parse_metric(name)
        if ref is not None and ref.kind == MetricKind.PLUGIN:
            from mlipilot.scorecard.metric_plugins import plugin

            out[name] = float(plugin(name).compute(pred))
        if ref is not None and ref.kind == MetricKind.GROUP and name not in out:
            rows = [r for r in per_frame if fnmatch.fnmatchcase(r[0], ref.selector)]
            if rows:
                out[name] = errors(rows)[ref.quantity]
    return out
