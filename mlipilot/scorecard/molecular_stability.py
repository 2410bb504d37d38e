"""MD stability for molecules in vacuum (Fu et al., "Forces are not enough"): NVT runs on holdout
molecules failing on non-finite values, a bonded pair deviating from its starting length by more
than a bound (broken topology), an H atom detached from everything, or temperature runaway."""

from __future__ import annotations

from typing import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.neighborlist import natural_cutoffs, neighbor_list

from mlipilot.scorecard.md_driver import langevin
from mlipilot.scorecard.spec import ScorecardSpec

RUNAWAY_WINDOW = 50  # steps: a few-atom molecule's instantaneous temperature swings too much to judge


def pick_molecules(frames: list[Atoms], n: int) -> list[Atoms]:
    """Equilibrium geometries, unseen molecules first, largest first (deterministic)."""
    eq = [f for f in frames if f.info.get("geometry_type", f.info.get("config_type")) == "eq"] or frames
    eq = sorted(eq, key=lambda f: (f.info.get("config_type") != "unseen_molecule", -len(f),
                                   str(f.info.get("smiles", ""))))
    out, seen = [], set()
    for f in eq:
        key = f.info.get("smiles", f.get_chemical_formula())
        if key not in seen:
            seen.add(key)
            out.append(Atoms(f.get_chemical_symbols(), positions=f.positions, pbc=False))
        if len(out) == n:
            break
    return out


def bonds(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i, j, d = neighbor_list("ijd", atoms, natural_cutoffs(atoms, mult=1.2))
    keep = i < j
    return i[keep], j[keep], d[keep]


def throughput_structure(spec: ScorecardSpec, frames: list[Atoms]) -> Atoms:
    return pick_molecules(frames, 1)[0]


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms],
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    st = spec.stability
    failed, worst_dev, max_ratio, runs = 0, 0.0, 0.0, {}
    molecules = pick_molecules(frames, st.molecules)
    for mol in molecules:
        bi, bj, d0 = bonds(mol)
        h_idx = [k for k, s in enumerate(mol.get_chemical_symbols()) if s == "H"]
        for run in st.runs:
            name = f"{run.name}_{mol.get_chemical_formula()}"
            reason, steps_done, temps = None, 0, []
            try:
                for s in langevin(mol, calc, run.temperature_K, run.steps, run.timestep_fs, run.friction, run.seed):
                    steps_done = s.step
                    if not (np.isfinite(s.energy) and np.isfinite(s.forces).all()):
                        reason = f"non-finite energy/forces at step {s.step}"
                        break
                    pos = s.atoms.positions
                    if len(bi):
                        dev = np.abs(np.linalg.norm(pos[bi] - pos[bj], axis=1) - d0)
                        worst_dev = max(worst_dev, float(dev.max()))
                        if dev.max() > st.max_bond_deviation_A:
                            k = int(dev.argmax())
                            reason = (f"bond {mol[bi[k]].symbol}{bi[k]}-{mol[bj[k]].symbol}{bj[k]} changed by "
                                      f"{dev[k]:.2f} Å at step {s.step} (bound {st.max_bond_deviation_A} Å)")
                            break
                    if h_idx and len(mol) > 1:
                        dists = np.linalg.norm(pos[h_idx][:, None, :] - pos[None, :, :], axis=2)
                        dists[np.arange(len(h_idx)), h_idx] = np.inf
                        nearest = dists.min(axis=1)
                        if nearest.max() > st.h_detach_A:
                            reason = f"H detached ({nearest.max():.2f} Å from any atom) at step {s.step}"
                            break
                    temps.append(s.temperature_K / s.target_K)
                    if len(temps) >= RUNAWAY_WINDOW:
                        ratio = float(np.mean(temps[-RUNAWAY_WINDOW:]))
                        max_ratio = max(max_ratio, ratio)
                        if ratio > st.max_temperature_factor:
                            reason = f"temperature runaway: mean T {ratio:.1f}× target over {RUNAWAY_WINDOW} steps"
                            break
            except Exception as e:  # a model that crashes the integrator is unstable, not a harness bug
                reason = f"MD raised {type(e).__name__}: {e}"
            failed += reason is not None
            runs[name] = {"ok": reason is None, "steps": steps_done, "reason": reason}
            progress(f"  md {name}: {'ok' if reason is None else 'FAILED: ' + reason} ({steps_done}/{run.steps} steps)")
    return {"md_failed_runs": float(failed), "md_max_bond_deviation": worst_dev,
            "md_max_temperature_ratio": max_ratio, "md_runs": runs}
