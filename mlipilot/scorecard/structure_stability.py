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

from mlipilot.md import CloseContact, MDRun, NonFinite, StepCheck, TemperatureRunaway, VolumeRatio
from mlipilot.md.checks import contact_ratio, is_periodic  # noqa: F401 -- re-exported for validation.structures
from mlipilot.scorecard.spec import Ensemble, ScorecardSpec, StructurePick
from mlipilot.scorecard.stability import reference_check
from mlipilot.scorecard.stability_kinds import STABILITY_KINDS, MDTask, protocol, worst

RUNAWAY_WINDOW = 20  # steps averaged before comparing the temperature with its target
CONTACT_EVERY = 5  # steps between close-contact checks (a neighbour list per step would dominate)


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


def md_tasks(spec: ScorecardSpec, frames: list[Atoms]) -> list[MDTask]:
    """Every run on every picked structure; NPT on a non-periodic one is skipped."""
    starts = md_structures(spec, frames)
    largest = max(range(len(starts)), key=lambda k: len(starts[k])) if starts else -1  # the throughput structure
    tasks = []
    for k, start in enumerate(starts):
        for run in spec.stability.runs:
            name = f"{run.name}_{k}_{start.get_chemical_formula()}"
            skip = "NPT needs a periodic cell" if run.ensemble == Ensemble.NPT and not is_periodic(start) else None
            tasks.append(MDTask(name, start, protocol(run), run, skip, k == largest and run.ensemble == Ensemble.NVT,
                                f"{len(start)} atoms, {run.ensemble}"))
    return tasks


def checks(spec: ScorecardSpec, task: MDTask) -> list[StepCheck]:
    st = spec.stability
    npt = [VolumeRatio(task.start.get_volume(), st.max_volume_factor)] if task.protocol.ensemble == Ensemble.NPT else []
    return [NonFinite(), CloseContact(st.min_distance_factor, CONTACT_EVERY), *npt,
            TemperatureRunaway(st.max_temperature_factor, RUNAWAY_WINDOW), *reference_check(spec)]


def summarize(spec: ScorecardSpec, runs: dict[str, MDRun]) -> dict[str, float | None]:
    return {"md_min_distance": worst(runs, "min_distance", min),
            "md_min_distance_ratio": worst(runs, "min_distance_ratio", min),
            "md_max_temperature_ratio": worst(runs, "max_temperature_ratio", max, 0.0),
            "md_max_volume_ratio": worst(runs, "max_volume_ratio", max, 1.0),
            "md_reference_force_rmse": worst(runs, "reference_force_rmse", max)}


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms],
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    return STABILITY_KINDS["structures"].metrics(calc, spec, frames, progress)
