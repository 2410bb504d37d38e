"""fcc Cu structures labelled with ASE's EMT: the cheap benchmark.

Deterministic for a given (seed, size): every random draw comes from one numpy Generator
in a fixed order, and EMT is deterministic.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc111
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

LATTICE_A = 3.59  # EMT's equilibrium fcc lattice constant for Cu is close to 3.59 Å
SPLIT_FRACTIONS = {"holdout": 0.2, "valid": 0.1}  # the rest is train

# frames per config_type for size="default"; size="small" divides by 4 (tests, quick demos)
DEFAULT_COUNTS = {
    "bulk32_strain": 48,
    "bulk108_strain": 12,
    "rattle32": 28,
    "vacancy32": 28,
    "slab111": 16,
    "slab100": 16,
    "md300": 16,
    "md600": 16,
    "md1000": 16,
    "md1500": 16,
}
SIZES = {"default": 1, "small": 4}


def _strain(atoms: Atoms, rng: np.random.Generator, max_strain: float = 0.04) -> Atoms:
    """Independent isotropic + shear strain per frame, each component within ±max_strain."""
    iso = rng.uniform(-max_strain, max_strain)
    shear = rng.uniform(-max_strain, max_strain, size=(3, 3))
    shear = 0.5 * (shear + shear.T)
    np.fill_diagonal(shear, 0.0)
    eps = np.eye(3) * (1.0 + iso) + shear
    atoms.set_cell(atoms.cell.array @ eps, scale_atoms=True)
    return atoms


def _rattle(atoms: Atoms, rng: np.random.Generator, sigma: float) -> Atoms:
    atoms.positions += rng.normal(0.0, sigma, size=atoms.positions.shape)
    return atoms


def _label(atoms: Atoms, config_type: str) -> Atoms:
    """Attach EMT energy/forces/stress as REF_* arrays and info; drop the live calculator."""
    atoms.calc = EMT()
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False) if atoms.pbc.all() else np.zeros((3, 3))
    labelled = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions,
                     cell=atoms.cell, pbc=atoms.pbc)
    labelled.info["REF_energy"] = float(energy)
    labelled.info["REF_stress"] = stress.reshape(9)
    labelled.info["config_type"] = config_type
    labelled.arrays["REF_forces"] = np.asarray(forces)
    return labelled


def _md_snapshots(n: int, temperature: float, rng: np.random.Generator) -> list[Atoms]:
    atoms = bulk("Cu", "fcc", a=LATTICE_A, cubic=True).repeat(2)
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 2.0 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng)
    dyn.run(100)  # equilibrate
    frames = []
    for _ in range(n):
        dyn.run(25)
        frames.append(_label(atoms.copy(), f"md{int(temperature)}"))
    return frames


def build_frames(seed: int = 0, size: str = "default") -> list[Atoms]:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    rng = np.random.default_rng(seed)
    counts = {k: max(2, v // SIZES[size]) for k, v in DEFAULT_COUNTS.items()}
    frames: list[Atoms] = []
    cubic = bulk("Cu", "fcc", a=LATTICE_A, cubic=True)
    for _ in range(counts["bulk32_strain"]):
        frames.append(_label(_rattle(_strain(cubic.repeat(2), rng), rng, 0.03), "bulk32_strain"))
    for _ in range(counts["bulk108_strain"]):
        frames.append(_label(_rattle(_strain(cubic.repeat(3), rng), rng, 0.03), "bulk108_strain"))
    for _ in range(counts["rattle32"]):
        frames.append(_label(_rattle(cubic.repeat(2), rng, rng.uniform(0.03, 0.08)), "rattle32"))
    for _ in range(counts["vacancy32"]):
        atoms = cubic.repeat(2)
        n_vac = int(rng.integers(1, 3))
        del atoms[list(rng.choice(len(atoms), size=n_vac, replace=False))]
        frames.append(_label(_rattle(_strain(atoms, rng, 0.02), rng, 0.05), "vacancy32"))
    for name, builder in (("slab111", fcc111), ("slab100", fcc100)):
        for _ in range(counts[name]):
            slab = builder("Cu", (2, 2, 4), a=LATTICE_A, vacuum=6.0, periodic=True)
            slab.pbc = (True, True, True)  # vacuum along z; periodic so stress stays defined
            frames.append(_label(_rattle(slab, rng, rng.uniform(0.02, 0.06)), name))
    for temp in (300, 600, 1000, 1500):
        frames.extend(_md_snapshots(counts[f"md{temp}"], float(temp), rng))
    return frames


def split_frames(frames: list[Atoms], seed: int) -> dict[str, list[Atoms]]:
    """Stratified split per config_type so every split sees every kind of structure."""
    rng = np.random.default_rng(seed + 1)
    by_type: dict[str, list[Atoms]] = {}
    for f in frames:
        by_type.setdefault(f.info["config_type"], []).append(f)
    splits: dict[str, list[Atoms]] = {"train": [], "valid": [], "holdout": []}
    for group in by_type.values():
        order = rng.permutation(len(group))
        n_hold = max(1, round(SPLIT_FRACTIONS["holdout"] * len(group)))
        n_valid = max(1, round(SPLIT_FRACTIONS["valid"] * len(group)))
        for rank, idx in enumerate(order):
            key = "holdout" if rank < n_hold else "valid" if rank < n_hold + n_valid else "train"
            splits[key].append(group[idx])
    return splits


def generate(out_dir: Path, seed: int = 0, size: str = "default", verbose: bool = True) -> dict[str, Path]:
    """Write train.xyz, valid.xyz and holdout.xyz under out_dir; return their paths."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = split_frames(build_frames(seed, size), seed)
    paths = {}
    for name, frames in splits.items():
        paths[name] = out_dir / f"{name}.xyz"
        write(paths[name], frames, format="extxyz")
    if verbose:
        _print_summary(splits, time.perf_counter() - t0)
    return paths


def _print_summary(splits: dict[str, list[Atoms]], seconds: float) -> None:
    print(f"cu_emt: generated in {seconds:.1f} s")
    for name, frames in splits.items():
        e = np.array([f.info["REF_energy"] / len(f) for f in frames])
        types = Counter(f.info["config_type"] for f in frames)
        print(f"  {name:8s} {len(frames):4d} frames  E/atom {e.min():+.3f} … {e.max():+.3f} eV"
              f" (std {1000 * e.std():.0f} meV)  " + ", ".join(f"{k}:{v}" for k, v in sorted(types.items())))


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="default", choices=sorted(SIZES))
    a = p.parse_args()
    generate(a.out_dir, a.seed, a.size)
