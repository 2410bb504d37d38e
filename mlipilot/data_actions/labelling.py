"""Reference labels for selected frames: any ASE calculator by name (EMT, LJ, a user's class by dotted
path) in process, or PySCF B3LYP/6-31G(d) through mlipilot.labels.pyscf_dft. Every label is cached
by geometry + reference (one JSON file per key, written atomically), so a killed labelling job
resumes without computing, or paying for, a label twice."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from mlipilot.labels.pyscf_dft import B3LYP_631GD, LabelCache

PYSCF_NAMES = ("pyscf", "pyscf-b3lyp", "b3lyp")


def reference_tag(reference: str, params: dict | None = None) -> str:
    if reference.lower() in PYSCF_NAMES:
        return B3LYP_631GD.tag()
    return f"ase-{reference}" + (f"-{json.dumps(params, sort_keys=True)}" if params else "")


def label_key(atoms: Atoms, tag: str) -> str:
    """sha256 of species, positions and cell (1e-6 Å), pbc and the reference's tag."""
    payload = json.dumps([atoms.get_chemical_symbols(), np.round(atoms.positions, 6).tolist(),
                          np.round(atoms.cell.array, 6).tolist(), atoms.pbc.tolist(), tag])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def compute(atoms: Atoms, reference: str, params: dict | None = None) -> dict:
    """One reference call: {"converged", "energy" (eV), "forces" (eV/Å), "stress" (eV/Å³, periodic), "seconds"}."""
    t0 = time.process_time()
    if reference.lower() in PYSCF_NAMES:
        from mlipilot.labels import pyscf_dft

        return pyscf_dft.compute(atoms, B3LYP_631GD) | {"seconds": time.process_time() - t0}
    from mlipilot.scorecard.reference import calculator_class

    a = atoms.copy()
    a.calc = calculator_class(reference)(**(params or {}))
    try:
        e, f = float(a.get_potential_energy()), np.asarray(a.get_forces())
        stress = a.get_stress(voigt=False).tolist() if a.pbc.all() else None
    except Exception as ex:  # the reference cannot label it: counted as failed, never kept
        return {"converged": False, "energy": None, "forces": None, "seconds": time.process_time() - t0,
                "error": f"{type(ex).__name__}: {ex}"[:200]}
    ok = bool(np.isfinite(e) and np.isfinite(f).all())
    return {"converged": ok, "energy": e if ok else None, "forces": f.tolist() if ok else None, "stress": stress,
            "seconds": time.process_time() - t0}


def label_frames(frames: list[Atoms], reference: str, params: dict | None, cache_dir: Path,
                 max_new: int, max_cpu_s: float) -> dict:
    """Label frames from the cache or by computing, until `max_new` new calls or `max_cpu_s` CPU-seconds
    (the budget left). Returns per frame {key, cached, converged, seconds} and why it stopped."""
    cache = LabelCache(Path(cache_dir))
    tag = reference_tag(reference, params)
    rows, new, cpu, stopped = [], 0, 0.0, None
    for a in frames:
        key = label_key(a, tag)
        hit = cache.get(key)
        if hit is None:
            if new >= max_new or cpu >= max_cpu_s:
                stopped = (f"labelling budget reached ({new} new calls, {cpu:.0f} CPU-s this job)")
                rows.append({"key": key, "cached": False, "converged": None, "seconds": 0.0})
                continue
            hit = compute(a, reference, params) | {"key": key, "reference": tag}
            cache.put(key, hit)
            new, cpu = new + 1, cpu + hit["seconds"]
            rows.append({"key": key, "cached": False, "converged": hit["converged"], "seconds": hit["seconds"]})
        else:
            rows.append({"key": key, "cached": True, "converged": hit["converged"], "seconds": hit["seconds"]})
    return {"rows": rows, "new_calls": new, "cpu_seconds": cpu, "stopped": stopped}


def labelled_atoms(a: Atoms, label: dict) -> Atoms:
    """A copy of the frame carrying the label under the REF_* keys train.py reads."""
    b = Atoms(a.get_chemical_symbols(), positions=a.positions, cell=a.cell, pbc=a.pbc)
    b.info.update({k: v for k, v in a.info.items() if not k.startswith("REF_")})
    b.info["REF_energy"] = float(label["energy"])
    b.arrays["REF_forces"] = np.asarray(label["forces"], float)
    if label.get("stress") is not None and a.pbc.all():
        s = np.asarray(label["stress"], float)
        b.info["REF_stress"] = s.reshape(9)  # as the shipped data: ASE sign, 3x3 flattened
    return b
