"""torch-sim's batched MD against ASE for the scorer's model: one replica's Velocity Verlet trajectory
is ASE's (same start, same velocities), and replicas in one batch do not see each other."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from mlipilot import batched_md

pytestmark = pytest.mark.skipif(not batched_md.available(), reason="torch-sim-atomistic is not installed")


def _minimum_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = d @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell


@pytest.fixture(scope="module")
def scorer_model(tmp_path_factory, good_model):
    from mlipilot.model_export import export, rebuild

    out = tmp_path_factory.mktemp("export")
    export(good_model, out)
    module, _ = rebuild(out)
    return module.double()


def _start(seed: int):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.05, seed=seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(seed))
    return atoms


def _ase_trajectory(module, atoms, steps: int, timestep_fs: float) -> np.ndarray:
    from mace.calculators import MACECalculator

    atoms = atoms.copy()
    atoms.calc = MACECalculator(models=[module], device="cpu", default_dtype="float64")
    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    traj = [atoms.get_positions()]
    for _ in range(steps):
        dyn.run(1)
        traj.append(atoms.get_positions())
    return np.stack(traj)


def test_one_replica_follows_ase_velocity_verlet_and_replicas_are_independent(scorer_model):
    steps, dt = 10, 2.0
    a, b = _start(1), _start(2)
    ref = _ase_trajectory(scorer_model, a, steps, dt)
    (alone,) = batched_md.verlet(scorer_model, [a], [a.get_velocities()], dt, steps)
    both = batched_md.verlet(scorer_model, [a, b], [a.get_velocities(), b.get_velocities()], dt, steps)
    cell = a.cell.array
    moved = np.abs(_minimum_image(ref[-1] - ref[0], cell)).max()
    assert moved > 1e-3  # the atoms did move: the comparison is not of two frozen frames
    for traj in (alone, both[0]):
        assert np.abs(_minimum_image(traj - ref, cell)).max() < 1e-6
    ref_b = _ase_trajectory(scorer_model, b, steps, dt)
    assert np.abs(_minimum_image(both[1] - ref_b, cell)).max() < 1e-6
