"""One checked MD engine: integrators yield MDSteps (integrators.py), small step checks decide
(checks.py), one loop runs them (runner.py), independent runs go to every free core (pool.py).

`sample` is the call for data sampling: MD frames every `every` steps, stopped early by the same
guards the scorecard uses."""

from __future__ import annotations

from typing import Sequence

from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.md.checks import (
    BondDeviation,
    CloseContact,
    HDetached,
    MaxForce,
    MinDistance,
    NonFinite,
    Observe,
    ReferenceForce,
    StepCheck,
    TemperatureRunaway,
    VolumeRatio,
)
from mlipilot.md.integrators import Ensemble, MDStep, Protocol, fcc_cell, integrate
from mlipilot.md.runner import run_checked
from mlipilot.md.result import MDRun

__all__ = ["BondDeviation", "CloseContact", "Ensemble", "HDetached", "MaxForce", "MDRun", "MDStep", "MinDistance", "NonFinite",
           "Observe", "Protocol", "ReferenceForce", "StepCheck", "TemperatureRunaway", "VolumeRatio", "fcc_cell",
           "guards", "integrate", "run_checked", "sample"]


def guards(start: Atoms, min_distance_factor: float = 0.5, max_temperature_factor: float = 2.5,
           window: int = 20, max_volume_factor: float | None = None) -> list[StepCheck]:
    """The scorecard's structure guards (kind `structures`): non-finite, close contact as a covalent-
    radius factor, windowed temperature runaway, and (NPT) the volume ratio."""
    out: list[StepCheck] = [NonFinite(), CloseContact(min_distance_factor)]
    if max_volume_factor is not None:
        out.append(VolumeRatio(start.get_volume(), max_volume_factor))
    out.append(TemperatureRunaway(max_temperature_factor, window))
    return out


def sample(start: Atoms, calc: Calculator, protocol: Protocol, every: int,
           checks: Sequence[StepCheck] | None = None) -> tuple[list[Atoms], MDRun]:
    """Frames (copies, calculator detached; `info['md_step']`, `info['md_target_K']`) every `every`
    steps of `protocol` from `start`, and the run: it stops at the first failed check (default:
    `guards(start)`, plus the volume ratio under NPT) and the frames end before the failing step."""
    frames: list[Atoms] = []

    def keep(s: MDStep) -> None:
        a = s.atoms.copy()
        a.calc = None
        a.info.update(md_step=s.step, md_target_K=s.target_K)
        frames.append(a)

    if checks is None:
        checks = guards(start, max_volume_factor=1.5 if protocol.ensemble == Ensemble.NPT else None)
    run = run_checked(integrate(start, calc, protocol), [*checks, Observe(keep, every)])
    return frames, run
