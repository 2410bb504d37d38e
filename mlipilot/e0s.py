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


def run_e0s(run_dir: Path) -> tuple[dict[str, float], str]:
    """The E0s for a run and where they came from (isolated atoms, or a fit to data/train.xyz)."""
    iso = Path(run_dir) / "data" / ISOLATED_ATOMS
    train = read(Path(run_dir) / "data" / "train.xyz", index=":", format="extxyz")
    elements = {s for f in train for s in f.get_chemical_symbols()}
    if iso.is_file():
        given = json.loads(iso.read_text())
        if elements <= set(given):
            return {el: float(given[el]) for el in sorted(elements, key=atomic_numbers.get)}, "isolated atoms"
    return fit_e0s(train), "least-squares fit to the training energies"


def e0s_option(e0s: dict[str, float]) -> str:
    """mace-torch's --E0s syntax: a dict keyed by atomic number."""
    return "{" + ", ".join(f"{atomic_numbers[el]}: {v!r}" for el, v in e0s.items()) + "}"
