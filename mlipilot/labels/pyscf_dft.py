"""B3LYP/6-31G(d) energies and analytic forces with PySCF, cached by a hash of geometry + method.

Method (recorded in every dataset's metadata): PySCF `dft.RKS`, xc "b3lyp" (in PySCF 2.14 the
VWN-RPA variant, as in Gaussian; B3LYP_WITH_VWN5 unset), basis 6-31g*, default grid level 3,
conv_tol 1e-9, closed shell, one thread per process. A frame whose SCF does not converge is recorded
as a failure in the cache and dropped, never kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

HARTREE_EV = 27.211386245988
BOHR_A = 0.529177210903


@dataclass(frozen=True)
class DFTMethod:
    xc: str = "b3lyp"
    basis: str = "6-31g*"
    grid_level: int = 3
    conv_tol: float = 1e-9
    max_cycle: int = 100

    def tag(self) -> str:
        return f"pyscf-rks-{self.xc}-{self.basis}-grid{self.grid_level}-tol{self.conv_tol:g}"

    def metadata(self) -> dict:
        import pyscf

        return {**asdict(self), "code": "PySCF", "version": pyscf.__version__, "reference": "RKS",
                "b3lyp_variant": "VWN-RPA (PySCF default; B3LYP_WITH_VWN5 unset)",
                "units": {"energy": "eV", "forces": "eV/Å"}}


B3LYP_631GD = DFTMethod()


def label_key(atoms: Atoms, method: DFTMethod = B3LYP_631GD) -> str:
    """sha256 of elements, positions rounded to 1e-6 Å and the method tag."""
    payload = json.dumps([atoms.get_chemical_symbols(), np.round(atoms.positions, 6).tolist(), method.tag()])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def compute(atoms: Atoms, method: DFTMethod = B3LYP_631GD) -> dict:
    """One PySCF calculation: {"converged", "energy" (eV), "forces" (eV/Å), "seconds"}."""
    from pyscf import dft, gto, lib

    lib.num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t0 = time.perf_counter()
    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                basis=method.basis, unit="Angstrom", charge=0, spin=0, verbose=0)
    mf = dft.RKS(mol)
    mf.xc = method.xc
    mf.grids.level = method.grid_level
    mf.conv_tol = method.conv_tol
    mf.max_cycle = method.max_cycle
    energy = mf.kernel()
    if not mf.converged:
        return {"converged": False, "energy": None, "forces": None, "seconds": time.perf_counter() - t0}
    grad = mf.nuc_grad_method().kernel()
    return {"converged": True, "energy": float(energy) * HARTREE_EV,
            "forces": (-np.asarray(grad) * HARTREE_EV / BOHR_A).tolist(), "seconds": time.perf_counter() - t0}


class LabelCache:
    """One JSON file per label key: an interrupted labelling resumes where it stopped."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> dict | None:
        p = self.dir / f"{key}.json"
        return json.loads(p.read_text()) if p.is_file() else None

    def put(self, key: str, label: dict) -> None:
        tmp = self.dir / f"{key}.json.tmp"
        tmp.write_text(json.dumps(label))
        tmp.rename(self.dir / f"{key}.json")  # atomic: a killed job never leaves half a label


def label_one(atoms: Atoms, cache_dir: str, method: DFTMethod = B3LYP_631GD) -> dict:
    """Label a frame unless cached; the submitit job function (one per frame, array jobs on Slurm)."""
    cache = LabelCache(Path(cache_dir))
    key = label_key(atoms, method)
    hit = cache.get(key)
    if hit is not None:
        return hit | {"cached": True}
    label = compute(atoms, method) | {"key": key, "method": method.tag()}
    cache.put(key, label)
    return label | {"cached": False}


def label_frames(frames: list[Atoms], cache_dir: Path, executor=None, method: DFTMethod = B3LYP_631GD,
                 progress=print) -> tuple[list[Atoms], list[dict]]:
    """Label frames (cached ones are free); returns (labelled frames, failures). Frames whose SCF did
    not converge are dropped and reported. With a submitit executor, uncached frames run as an array."""
    cache = LabelCache(cache_dir)
    todo = [f for f in frames if cache.get(label_key(f, method)) is None]
    progress(f"labelling: {len(frames) - len(todo)} cached, {len(todo)} to compute ({method.tag()})")
    if todo:
        if executor is None:
            for i, f in enumerate(todo, 1):
                r = label_one(f, str(cache_dir), method)
                progress(f"  {i}/{len(todo)} {f.get_chemical_formula()}: "
                         f"{'ok' if r['converged'] else 'SCF NOT CONVERGED'} ({r['seconds']:.1f} s)")
        else:
            jobs = executor.map_array(label_one, todo, [str(cache_dir)] * len(todo), [method] * len(todo))
            for i, job in enumerate(jobs, 1):
                r = job.result()
                progress(f"  {i}/{len(todo)} job {job.job_id}: {'ok' if r['converged'] else 'SCF NOT CONVERGED'}")
    labelled, failures = [], []
    for f in frames:
        key = label_key(f, method)
        lab = cache.get(key)
        if not lab or not lab["converged"]:
            failures.append({"key": key, "formula": f.get_chemical_formula(), "reason": "SCF not converged"})
            continue
        g = Atoms(f.get_chemical_symbols(), positions=f.positions, pbc=False)
        g.info.update({k: v for k, v in f.info.items() if not k.startswith("REF_")})
        g.info["REF_energy"] = lab["energy"]
        g.info["label_key"] = key
        g.arrays["REF_forces"] = np.asarray(lab["forces"])
        labelled.append(g)
    return labelled, failures
