"""MD stability on the user's own structures (``stability.kind: structures``): any elements,
periodic or not, NVT (Langevin), heating ramps and NPT (Berendsen), started from the benchmark's
``md_structures`` or a deterministic pick from the holdout.

Checks: non-finite values, close contacts scaled by covalent radii (one Å bound can't fit H–H and
Au–Au alike), temperature runaway (a moving average: a few-atom cell's instantaneous temperature
swings too much to judge), reference-force error on sampled frames, and volume blow-up under NPT.
"""

from __future__ import annotations

import fnmatch
from typing import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from mlipilot.scorecard.md_driver import langevin, npt_berendsen
from mlipilot.scorecard.spec import Ensemble, MDRun, ScorecardSpec, StructurePick
from mlipilot.scorecard.stability import reference_check

RUNAWAY_WINDOW = 20  # steps averaged before comparing the temperature with its target
CONTACT_EVERY = 5  # steps between close-contact checks (a neighbour list per step would dominate)


def is_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def repeat_to(atoms: Atoms, min_atoms: int) -> Atoms:
    """Repeat a periodic cell along its currently shortest axis until it holds ≥ min_atoms."""
    if not is_periodic(atoms) or len(atoms) >= min_atoms:
        return atoms
    reps = np.ones(3, dtype=int)
    lengths = atoms.cell.lengths()
    while len(atoms) * reps.prod() < min_atoms:
        reps[int(np.argmin(lengths * reps))] += 1
    return atoms.repeat(tuple(int(r) for r in reps))


EXPLICIT = "mlipilot_md_structure"  # info flag the scorer sets on frames of the benchmark's md_structures


def pick_structures(frames: list[Atoms], pick: StructurePick) -> list[Atoms]:
    """Deterministic, labels dropped. The benchmark's own md_structures: every matching frame in file
    order; holdout frames: the first `per_config_type` of each matching config_type, by name."""
    by_type: dict[str, list[Atoms]] = {}
    explicit = bool(frames) and all(f.info.get(EXPLICIT) for f in frames)
    for i, f in enumerate(frames):
        ct = str(f.info.get("config_type", "default"))
        if any(fnmatch.fnmatchcase(ct, g) for g in pick.config_types):
            by_type.setdefault(f"{i:06d}" if explicit else ct, []).append(f)
    out = []
    for key in sorted(by_type):
        for f in by_type[key][:1 if explicit else pick.per_config_type]:
            clean = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=f.pbc)
            clean.info["config_type"] = str(f.info.get("config_type", "default"))
            out.append(repeat_to(clean, pick.min_atoms))
    return out[:pick.max_structures]


def md_structures(spec: ScorecardSpec, frames: list[Atoms]) -> list[Atoms]:
    return pick_structures(frames, spec.stability.structures)


def throughput_structure(spec: ScorecardSpec, frames: list[Atoms]) -> Atoms:
    """The largest MD structure: per-atom timing is then least dominated by fixed overheads."""
    return max(md_structures(spec, frames), key=len)


def contact_ratio(atoms: Atoms, factor: float) -> float:
    """Closest pair distance / (sum of the pair's covalent radii); inf when no pair is near."""
    radii = covalent_radii[atoms.numbers]
    cutoff = max(factor, 1.0) * 2 * float(radii.max())
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    if len(d) == 0:
        return float("inf")
    return float((d / (radii[i] + radii[j])).min())


def _trajectory(atoms: Atoms, calc: Calculator, run: MDRun):
    if run.ensemble == Ensemble.NPT:
        return npt_berendsen(atoms, calc, run.temperature_K, run.steps, run.timestep_fs, run.pressure_GPa,
                             run.taut_fs, run.taup_fs, run.compressibility_per_GPa, run.seed)
    return langevin(atoms, calc, run.temperature_K, run.steps, run.timestep_fs, run.friction, run.seed)


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms],
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    st = spec.stability
    ref = st.reference.make() if st.reference else None
    failed, min_ratio, min_dist, max_ratio, max_vol, ref_errs, runs = 0, np.inf, np.inf, 0.0, 1.0, [], {}
    for k, start in enumerate(md_structures(spec, frames)):
        for run in st.runs:
            name = f"{run.name}_{k}_{start.get_chemical_formula()}"
            if run.ensemble == Ensemble.NPT and not is_periodic(start):
                runs[name] = {"ok": True, "steps": 0, "reason": None, "skipped": "NPT needs a periodic cell"}
                continue
            reason, steps_done, temps, v0 = None, 0, [], start.get_volume() if is_periodic(start) else None
            try:
                for s in _trajectory(start, calc, run):
                    steps_done = s.step
                    if not (np.isfinite(s.energy) and np.isfinite(s.forces).all()):
                        reason = f"non-finite energy/forces at step {s.step}"
                        break
                    if s.step % CONTACT_EVERY == 0 or s.step == run.steps:
                        ratio = contact_ratio(s.atoms, st.min_distance_factor)
                        min_ratio = min(min_ratio, ratio)
                        d = s.atoms.get_all_distances(mic=is_periodic(s.atoms))
                        np.fill_diagonal(d, np.inf)
                        min_dist = min(min_dist, float(d.min()) if len(s.atoms) > 1 else np.inf)
                        if ratio < st.min_distance_factor:
                            reason = (f"close contact: a pair at {ratio:.2f}× its covalent-radius sum at step {s.step}"
                                      f" (bound {st.min_distance_factor})")
                            break
                    if run.ensemble == Ensemble.NPT:
                        vr = s.atoms.get_volume() / v0
                        max_vol = max(max_vol, vr, 1 / vr)
                        if max(vr, 1 / vr) > st.max_volume_factor:
                            reason = f"volume {vr:.2f}× its start at step {s.step} (bound {st.max_volume_factor}×)"
                            break
                    temps.append(s.temperature_K / s.target_K)
                    if len(temps) >= RUNAWAY_WINDOW:
                        tr = float(np.mean(temps[-RUNAWAY_WINDOW:]))
                        max_ratio = max(max_ratio, tr)
                        if tr > st.max_temperature_factor:
                            reason = f"temperature runaway: mean T {tr:.1f}× target over {RUNAWAY_WINDOW} steps at step {s.step}"
                            break
                    if ref is not None and s.step % st.sample_every == 0:
                        reason = reference_check(s, ref, spec, ref_errs)
                        if reason:
                            break
            except Exception as e:  # a model that crashes the integrator is unstable, not a harness bug
                reason = f"MD raised {type(e).__name__}: {e}"
            failed += reason is not None
            runs[name] = {"ok": reason is None, "steps": steps_done, "reason": reason}
            progress(f"  md {name} ({len(start)} atoms, {run.ensemble}): "
                     f"{'ok' if reason is None else 'FAILED: ' + reason} ({steps_done}/{run.steps} steps)")
    return {
        "md_failed_runs": float(failed),
        "md_min_distance": float(min_dist) if np.isfinite(min_dist) else None,
        "md_min_distance_ratio": float(min_ratio) if np.isfinite(min_ratio) else None,
        "md_max_temperature_ratio": float(max_ratio),
        "md_max_volume_ratio": float(max_vol),
        "md_reference_force_rmse": float(max(ref_errs)) if ref_errs else None,
        "md_runs": runs,
    }
