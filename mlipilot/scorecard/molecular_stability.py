"""MD stability for molecules in vacuum (Fu et al., "Forces are not enough"): NVT runs on holdout
molecules failing on non-finite values, a bonded pair deviating from its starting length by more
than a bound (broken topology), an H atom detached from everything, or temperature runaway."""

from __future__ import annotations

from typing import Callable

from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.md import BondDeviation, HDetached, MDRun, NonFinite, StepCheck, TemperatureRunaway
from mlipilot.md.checks import bonds  # noqa: F401 -- the bond topology validation.molecules reads too
from mlipilot.scorecard.spec import ScorecardSpec
from mlipilot.scorecard.stability_kinds import STABILITY_KINDS, MDTask, protocol, worst

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


def throughput_structure(spec: ScorecardSpec, frames: list[Atoms]) -> Atoms:
    return pick_molecules(frames, 1)[0]


def md_tasks(spec: ScorecardSpec, frames: list[Atoms]) -> list[MDTask]:
    """Every run on each picked molecule (the first is the throughput structure)."""
    return [MDTask(f"{run.name}_{mol.get_chemical_formula()}", mol, protocol(run), run, throughput=k == 0)
            for k, mol in enumerate(pick_molecules(frames, spec.stability.molecules)) for run in spec.stability.runs]


def checks(spec: ScorecardSpec, task: MDTask) -> list[StepCheck]:
    st = spec.stability
    return [NonFinite(), BondDeviation(task.start, st.max_bond_deviation_A), HDetached(st.h_detach_A),
            TemperatureRunaway(st.max_temperature_factor, RUNAWAY_WINDOW)]


def summarize(spec: ScorecardSpec, runs: dict[str, MDRun]) -> dict[str, float | None]:
    return {"md_max_bond_deviation": worst(runs, "max_bond_deviation", max, 0.0),
            "md_max_temperature_ratio": worst(runs, "max_temperature_ratio", max, 0.0)}


def stability_metrics(calc: Calculator, spec: ScorecardSpec, frames: list[Atoms],
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    return STABILITY_KINDS["molecules"].metrics(calc, spec, frames, progress)
