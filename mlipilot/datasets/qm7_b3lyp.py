"""Small organic molecules (QM9, ≤ 5 heavy atoms of C, N, O, plus H) with B3LYP/6-31G(d) energies
and forces from PySCF: the molecular benchmark.

The shipped set (benchmarks/qm7_b3lyp/pool.extxyz.gz, 432 geometries of 108 molecules: QM9
geometries from the PyPI package qm9pack 1.0.3 (MIT) and three rattled copies each, labelled with
mlipilot.labels.pyscf_dft's method) is split by molecule, so the holdout has unseen molecules as
well as unseen geometries of seen ones. `extend` labels more rattled geometries with PySCF (cached,
resumable, submitit array jobs).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from mlipilot.resources import project_root

MAX_FORCE_EV_A = 30.0  # the σ = 0.12 Å copies hold close contacts with forces up to 164 eV/Å: dropped
HOLDOUT_MOLECULE_FRACTION = 0.15
VALID_FRACTION = 0.1
SIZES = {"default": 5, "small": 3, "tiny": 1}  # max heavy atoms per molecule


def pool_path() -> Path:
    return project_root() / "benchmarks" / "qm7_b3lyp" / "pool.extxyz.gz"


def isolated_atom_energies() -> dict[str, float]:
    d = json.loads((project_root() / "benchmarks" / "qm7_b3lyp" / "isolated_atoms.json").read_text())
    return {el: v["energy_eV"] for el, v in d.items()}


def heavy_atoms(atoms: Atoms) -> int:
    return int(sum(s != "H" for s in atoms.get_chemical_symbols()))


def load_pool(size: str = "default") -> list[Atoms]:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    frames = read(pool_path(), index=":", format="extxyz")
    keep = [f for f in frames if np.abs(f.arrays["REF_forces"]).max() <= MAX_FORCE_EV_A
            and heavy_atoms(f) <= SIZES[size]]
    return keep


def split_by_molecule(frames: list[Atoms], seed: int) -> dict[str, list[Atoms]]:
    rng = np.random.default_rng(seed)
    by_mol: dict[str, list[Atoms]] = defaultdict(list)
    for f in frames:
        by_mol[f.info["smiles"]].append(f)
    mols = sorted(by_mol)
    order = rng.permutation(len(mols))
    n_unseen = max(1, round(HOLDOUT_MOLECULE_FRACTION * len(mols)))
    unseen = {mols[i] for i in order[:n_unseen]}
    splits: dict[str, list[Atoms]] = {"train": [], "valid": [], "holdout": []}
    for smi in mols:
        group = by_mol[smi]
        for f in group:
            f.info["geometry_type"] = f.info.pop("config_type", "eq")
        if smi in unseen:
            for f in group:
                f.info["config_type"] = "unseen_molecule"
            splits["holdout"] += group
            continue
        for f in group:
            f.info["config_type"] = "seen_molecule"
        rattled = [f for f in group if f.info["geometry_type"] != "eq"]
        if len(group) > 2 and rattled and rng.random() < 0.25:  # an unseen geometry of a seen molecule
            held = rattled[int(rng.integers(len(rattled)))]
            splits["holdout"].append(held)
            group = [f for f in group if f is not held]
        for f in group:
            splits["valid" if rng.random() < VALID_FRACTION else "train"].append(f)
    return splits


def generate(out_dir: Path, seed: int = 0, size: str = "default", verbose: bool = True) -> dict[str, Path]:
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = split_by_molecule(load_pool(size), seed)
    paths = {}
    for name, frames in splits.items():
        paths[name] = out_dir / f"{name}.xyz"
        write(paths[name], frames, format="extxyz")
    if verbose:
        for name, frames in splits.items():
            mols = {f.info["smiles"] for f in frames}
            els = Counter(s for f in frames for s in f.get_chemical_symbols())
            print(f"  {name:8s} {len(frames):4d} geometries of {len(mols):3d} molecules; atoms {dict(els)}")
        print(f"qm7_b3lyp: split in {time.perf_counter() - t0:.1f} s (B3LYP/6-31G(d), PySCF)")
    return paths


def extend(out: Path, n_per_molecule: int, sigma: float, seed: int, cache_dir: Path, executor=None,
           size: str = "default", progress=print) -> Path:
    """Label `n_per_molecule` new rattled copies of each equilibrium geometry with PySCF and write
    them (the shipped pool plus the new frames) to `out`. Cached: re-running resumes."""
    from mlipilot.labels.pyscf_dft import B3LYP_631GD, label_frames

    rng = np.random.default_rng(seed)
    base = load_pool(size)
    new = []
    for f in (f for f in base if f.info.get("config_type") == "eq"):
        for _ in range(n_per_molecule):
            g = f.copy()
            g.positions = g.positions + rng.normal(0.0, sigma, size=g.positions.shape)
            g.info.update({"config_type": f"rattle{sigma:g}", "rattle_sigma_A": sigma, "extended_seed": seed})
            new.append(g)
    labelled, failures = label_frames(new, cache_dir, executor, progress=progress)
    for fail in failures:
        progress(f"  dropped {fail['formula']} ({fail['key']}): {fail['reason']}")
    write(out, base + labelled, format="extxyz")
    meta = {"method": B3LYP_631GD.metadata(), "frames": len(base) + len(labelled), "new": len(labelled),
            "failed": failures, "seed": seed, "sigma_A": sigma}
    Path(str(out) + ".json").write_text(json.dumps(meta, indent=1))
    progress(f"wrote {out}: {len(base)} shipped + {len(labelled)} new geometries, {len(failures)} dropped")
    return out


def validation_frames(train: list[Atoms]) -> list[Atoms]:
    """Labelled molecules larger than every training molecule, from the shipped pool (none when the
    run already trains on the largest): `mlipilot validate` tests on them beyond the holdout."""
    largest = max(heavy_atoms(f) for f in train)
    seen = {f.info.get("smiles") for f in train}
    return [f for f in load_pool("default") if heavy_atoms(f) > largest and f.info.get("smiles") not in seen]
