"""Reference energies per element (mace-torch's ``E0s``) for any system: the isolated-atom
energies a benchmark gives, else a least-squares fit of total energies to composition on the
training data (what mace-torch's ``E0s: average`` does, written out so an agent can see it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.io import read

ISOLATED_ATOMS = "isolated_atoms.json"  # in the run's data/ folder: {element: eV}


def fit_e0s(frames: list[Atoms], energy_key: str = "REF_energy") -> dict[str, float]:
    """Least-squares E0 per element from total energies: the energy the model then need not learn."""
    elements = sorted({s for f in frames for s in f.get_chemical_symbols()}, key=atomic_numbers.get)
    counts = np.array([[f.get_chemical_symbols().count(el) for el in elements] for f in frames], dtype=float)
    energies = np.array([f.info[energy_key] for f in frames], dtype=float)
    e0, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {el: float(v) for el, v in zip(elements, e0)}


def residual_rmse(frames: list[Atoms], e0s: dict[str, float], energy_key: str = "REF_energy") -> float:
    """RMSE per atom (eV) of E - sum(E0): the energy the network is left to learn with these E0s."""
    per_atom = [(f.info[energy_key] - sum(e0s[s] for s in f.get_chemical_symbols())) / len(f) for f in frames]
    return float(np.sqrt(np.mean(np.square(per_atom))))


def run_e0s(run_dir: Path) -> tuple[dict[str, float], str]:
    """The E0s for a run and why: a least-squares fit to data/train.xyz, unless the benchmark's
    isolated-atom energies leave less energy per atom to learn on data/valid.xyz. A proxy for what
    helps training: isolated atoms leave the whole cohesive energy to the network (an EMT-like
    system's energy error went 13 -> 52 meV/atom with them), so they win only where the fit
    generalises worse (e.g. training compositions too alike to separate the elements)."""
    data = Path(run_dir) / "data"
    train = read(data / "train.xyz", index=":", format="extxyz")
    fit = fit_e0s(train)
    source = "least-squares fit to the training energies"
    iso = data / ISOLATED_ATOMS
    given = json.loads(iso.read_text()) if iso.is_file() else {}
    if not set(fit) <= set(given):
        return fit, source
    isolated = {el: float(given[el]) for el in fit}
    valid = read(data / "valid.xyz", index=":", format="extxyz") if (data / "valid.xyz").is_file() else train
    r_fit, r_iso = residual_rmse(valid, fit), residual_rmse(valid, isolated)
    left = f"E - sum(E0) on data/valid.xyz: {1000 * r_fit:.4g} meV/atom RMSE with the fit, {1000 * r_iso:.4g} with the isolated atoms"
    if r_iso < r_fit:
        return isolated, f"isolated atoms, which leave less to learn ({left})"
    return fit, f"{source}, which leaves less to learn than the isolated atoms ({left})"


def e0s_option(e0s: dict[str, float]) -> str:
    """mace-torch's --E0s syntax: a dict keyed by atomic number."""
    return "{" + ", ".join(f"{atomic_numbers[el]}: {v!r}" for el, v in e0s.items()) + "}"
