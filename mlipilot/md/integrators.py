"""ASE integrators that yield one `MDStep` per step: Langevin and Berendsen NPT (both with linear
temperature ramps) and VelocityVerlet (NVE).

They are the only place MD advances. The checked runner (runner.py) consumes any iterator of
MDSteps, so a batched multi-replica driver can replace these without touching the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterator

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, thermalize_momenta


def fcc_cell(element: str, lattice_a: float, repeats: int) -> Atoms:
    return bulk(element, "fcc", a=lattice_a, cubic=True).repeat(repeats)


@dataclass
class MDStep:
    step: int  # 1..total (VelocityVerlet also yields the start as step 0)
    total: int  # steps the run was asked for
    target_K: float
    temperature_K: float
    energy: float  # potential energy, eV
    forces: np.ndarray
    atoms: Atoms  # the live atoms (copy before keeping)


class Ensemble(StrEnum):
    NVT = "nvt"  # Langevin
    NPT = "npt"  # isotropic Berendsen barostat + thermostat (periodic structures only)
    NVE = "nve"  # VelocityVerlet


@dataclass(frozen=True)
class Protocol:
    """One MD run's integrator settings (the scorecard's and validation's run entries map onto it)."""
    temperature_K: tuple[float, float]  # (start, end): a ramp when they differ
    steps: int
    timestep_fs: float = 2.0
    seed: int = 0
    ensemble: Ensemble = Ensemble.NVT
    friction: float = 0.02  # NVT: Langevin friction (ASE units)
    pressure_GPa: float = 0.0  # NPT
    taut_fs: float = 100.0  # NPT: thermostat time constant
    taup_fs: float = 500.0  # NPT: barostat time constant
    compressibility_per_GPa: float = 0.01  # NPT: only sets how fast the cell responds (Berendsen)


def integrate(atoms: Atoms, calc: Calculator, p: Protocol) -> Iterator[MDStep]:
    """The protocol's integrator on a copy of `atoms`."""
    if p.ensemble == Ensemble.NPT:
        return npt_berendsen(atoms, calc, p.temperature_K, p.steps, p.timestep_fs, p.pressure_GPa,
                             p.taut_fs, p.taup_fs, p.compressibility_per_GPa, p.seed)
    if p.ensemble == Ensemble.NVE:
        return velocity_verlet(atoms, calc, p.temperature_K[0], p.steps, p.timestep_fs, p.seed)
    return langevin(atoms, calc, p.temperature_K, p.steps, p.timestep_fs, p.friction, p.seed)


def langevin(atoms: Atoms, calc: Calculator, temperature_K: tuple[float, float], steps: int,
             timestep_fs: float, friction: float, seed: int) -> Iterator[MDStep]:
    """Langevin MD, the thermostat moved linearly from start to end temperature."""
    from ase.md.langevin import Langevin

    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    t0 = temperature_K[0]
    thermalize_momenta(atoms, temperature_K=t0, rng=rng)
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=t0, friction=friction, fixcm=False, rng=rng)
    yield from _ramped(dyn, atoms, temperature_K, steps)


def npt_berendsen(atoms: Atoms, calc: Calculator, temperature_K: tuple[float, float], steps: int,
                  timestep_fs: float, pressure_GPa: float, taut_fs: float, taup_fs: float,
                  compressibility_per_GPa: float, seed: int) -> Iterator[MDStep]:
    """Isotropic Berendsen NPT (ASE): the cell breathes with the model's stress, so a model whose
    stress is wrong shows it as a volume blow-up or collapse."""
    from ase.md.nptberendsen import NPTBerendsen

    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    t0 = temperature_K[0]
    thermalize_momenta(atoms, temperature_K=t0, rng=rng)
    dyn = NPTBerendsen(atoms, timestep_fs * units.fs, temperature_K=t0, pressure_au=pressure_GPa * units.GPa,
                       taut=taut_fs * units.fs, taup=taup_fs * units.fs,
                       compressibility_au=compressibility_per_GPa / units.GPa)
    yield from _ramped(dyn, atoms, temperature_K, steps)


def velocity_verlet(atoms: Atoms, calc: Calculator, temperature_K: float, steps: int, timestep_fs: float,
                    seed: int) -> Iterator[MDStep]:
    """NVE from Maxwell-Boltzmann velocities without net momentum (a drift measured is then the
    integrator's, not a flying cell); yields the start as step 0, energy conservation needs it."""
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
    for step in range(0, steps + 1):
        if step:
            dyn.run(1)
        yield _observe(step, steps, temperature_K, atoms)


def _ramped(dyn, atoms: Atoms, temperature_K: tuple[float, float], steps: int) -> Iterator[MDStep]:
    """Step `dyn` one step at a time, moving its thermostat linearly from start to end temperature."""
    t0, t1 = temperature_K
    for step in range(1, steps + 1):
        target = t0 + (t1 - t0) * step / steps
        if t1 != t0:
            dyn.set_temperature(temperature_K=target)
        dyn.run(1)
        yield _observe(step, steps, target, atoms)


def _observe(step: int, total: int, target: float, atoms: Atoms) -> MDStep:
    return MDStep(step, total, target, float(atoms.get_temperature()), float(atoms.get_potential_energy()),
                  atoms.get_forces(), atoms)
