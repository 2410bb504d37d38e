"""Energy and force errors of a model against reference labels, overall and per config_type."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator


def accuracy_metrics(calc: Calculator, frames: list[Atoms], energy_key: str = "REF_energy",
                     forces_key: str = "REF_forces") -> dict[str, float]:
    """RMSE/MAE of energy per atom (meV/atom) and force components (meV/Å)."""
    de: dict[str, list[float]] = defaultdict(list)
    df: dict[str, list[np.ndarray]] = defaultdict(list)
    for atoms in frames:
        ref_e = atoms.info[energy_key]
        ref_f = atoms.arrays[forces_key]
        probe = atoms.copy()
        probe.calc = calc
        e_err = (probe.get_potential_energy() - ref_e) / len(atoms) * 1000.0
        f_err = (probe.get_forces() - ref_f).ravel() * 1000.0
        for key in ("", "_" + str(atoms.info.get("config_type", "default"))):
            de[key].append(e_err)
            df[key].append(f_err)
    out: dict[str, float] = {}
    for key in de:
        e = np.asarray(de[key])
        f = np.concatenate(df[key])
        out[f"energy_rmse{key}"] = float(np.sqrt(np.mean(e**2)))
        out[f"force_rmse{key}"] = float(np.sqrt(np.mean(f**2)))
        if key == "":
            out["energy_mae"] = float(np.mean(np.abs(e)))
            out["force_mae"] = float(np.mean(np.abs(f)))
    return out
