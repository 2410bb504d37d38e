"""The holdout stays a holdout: a frame that duplicates a holdout or validation structure is refused.

Two rules: an exact structure hash (species, wrapped fractional positions and cell, rounded), and a
descriptor distance that survives permutation, translation, rotation and tiny rattles: for each atom
its sorted distances to its nearest neighbours (minimum image), rows sorted; two frames of the same
composition closer than DUPLICATE_A (max abs difference, Å) are the same structure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

NEIGHBOURS = 12
DUPLICATE_A = 0.02  # a 1e-6 Å rattle is far below; thermal MD frames differ by > 0.1 Å


def structure_hash(atoms: Atoms) -> str:
    """sha256 of species, cell and wrapped positions (fractional when periodic), rounded, order-free."""
    pbc = atoms.pbc.any() and atoms.cell.rank == 3
    pos = atoms.get_scaled_positions(wrap=True) if pbc else atoms.positions - atoms.positions.mean(axis=0)
    rows = sorted(zip(atoms.get_chemical_symbols(), map(tuple, np.round(pos, 4).tolist())))
    payload = repr((rows, np.round(atoms.cell.array, 4).tolist() if pbc else None))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def fingerprint(atoms: Atoms) -> np.ndarray:
    """Per atom: its species number and sorted distances to its NEIGHBOURS nearest atoms; rows sorted."""
    n = len(atoms)
    if n < 2:
        return np.asarray(atoms.numbers, float).reshape(n, 1)
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    np.fill_diagonal(d, np.inf)
    k = min(NEIGHBOURS, n - 1)
    near = np.sort(d, axis=1)[:, :k]
    rows = np.column_stack([atoms.numbers.astype(float), near])
    return rows[np.lexsort(rows.T[::-1])]


def _composition(atoms: Atoms) -> tuple:
    return (atoms.get_chemical_formula(mode="hill"), len(atoms))


@dataclass
class Guard:
    """The protected structures (holdout, validation) indexed by hash and by composition."""

    hashes: dict[str, str]  # hash -> where
    by_comp: dict[tuple, list[tuple[str, np.ndarray]]]

    @classmethod
    def from_files(cls, files: dict[str, Path]) -> "Guard":
        hashes, by_comp = {}, {}
        for label, path in files.items():
            if not Path(path).is_file():
                continue
            for i, a in enumerate(read(path, index=":", format="extxyz")):
                where = f"{label} frame {i}"
                hashes.setdefault(structure_hash(a), where)
                by_comp.setdefault(_composition(a), []).append((where, fingerprint(a)))
        return cls(hashes, by_comp)

    def duplicate_of(self, atoms: Atoms) -> str | None:
        """Where a protected copy of this structure lives, or None."""
        if (h := structure_hash(atoms)) in self.hashes:
            return f"{self.hashes[h]} (same structure hash)"
        fp = fingerprint(atoms)
        for where, other in self.by_comp.get(_composition(atoms), ()):
            if other.shape == fp.shape and float(np.max(np.abs(other - fp))) < DUPLICATE_A:
                return f"{where} (descriptor distance < {DUPLICATE_A} Å)"
        return None


def protected_files(store: Path) -> dict[str, Path]:
    """The store's structures no data action may add: the holdout, the MD starts, validation extras."""
    store = Path(store)
    return {name: store / name for name in ("holdout.xyz", "md_structures.xyz", "validation_frames.xyz")
            if (store / name).is_file()}
