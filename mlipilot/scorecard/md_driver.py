"""Langevin MD driven by any ASE calculator, yielding per-step observations.

Kept apart from the checks (stability.py) so a batched multi-replica driver can replace it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta


def fcc_cell(element: str, lattice_a: float, repeats: int) -> Atoms:
    return bulk(element, "fcc", a=lattice_a, cubic=True).repeat(repeats)


@dataclass
class MDStep:
    step: int
    target_K: float
    temperature_K: float
    energy: float
    forces: np.ndarray
    atoms: Atoms


def langevin(atoms: Atoms, calc: Calculator, temperature_K: tuple[float, float], steps: int,
             timestep_fs: float, friction: float, seed: int) -> Iterator[MDStep]:
    """Run Langevin MD, linearly ramping the thermostat from start to end temperature."""
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    t0 = temperature_K[0]
    thermalize_momenta(atoms, temperature_K=t0, rng=rng)
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=t0, friction=friction,
                   fixcm=False, rng=rng)
    yield from _ramped(dyn, atoms, temperature_K, steps)


def _ramped(dyn, atoms: Atoms, temperature_K: tuple[float, float], steps: int) -> Iterator[MDStep]:
    """Step `dyn` one step at a time, moving its thermostat linearly from start to end temperature."""
    t0, t1 = temperature_K
    for step in range(1, steps + 1):
        target = t0 + (t1 - t0) * step / steps
        if t1 != t0:
            dyn.set_temperature(temperature_K=target)
        dyn.run(1)
        yield MDStep(step, target, float(atoms.get_temperature()), float(atoms.get_potential_energy()),
                     atoms.get_forces(), atoms)


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
