"""The duplicate guard matches structures, not descriptor rows (issue 33 item 4): a copy of a protected
frame that an agent perturbs (atoms displaced by up to 0.03 Å, translated, permuted, rotated, strained
by 2 %, repeated into a supercell, an atom removed, or several of these at once) is refused every time,
and genuinely new structures (independent thermal frames, a 6 % strain, the perfect crystal in another
supercell, other molecules) pass. Fast: no training, no run; the protected frames are built with the
cu_emt benchmark's own generators (the same kinds its holdout holds)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc100, fcc111, make_supercell, molecule
from ase.io import write
from scipy.spatial.transform import Rotation

from mlipilot.data_actions.guard import MAX_STRAIN, MISSING_FRACTION, Guard, structure_hash
from mlipilot.datasets import cu_emt


def holdout_like(seed: int = 0) -> list[Atoms]:
    """17 frames of the cu_emt kinds: strained + rattled bulk (32, 108 atoms), rattled bulk, vacancies,
    rattled (111) and (100) slabs with vacuum, and 300 K / 1000 K Langevin MD snapshots."""
    rng = np.random.default_rng(seed)
    cubic = bulk("Cu", "fcc", a=cu_emt.LATTICE_A, cubic=True)
    frames = [cu_emt._rattle(cu_emt._strain(cubic.repeat(2), rng), rng, 0.03) for _ in range(3)]
    frames += [cu_emt._rattle(cu_emt._strain(cubic.repeat(3), rng), rng, 0.03) for _ in range(2)]
    frames += [cu_emt._rattle(cubic.repeat(2), rng, rng.uniform(0.03, 0.08)) for _ in range(3)]
    for n_vac in (1, 2):
        atoms = cubic.repeat(2)
        del atoms[list(rng.choice(len(atoms), size=n_vac, replace=False))]
        frames.append(cu_emt._rattle(cu_emt._strain(atoms, rng, 0.02), rng, 0.05))
    for builder in (fcc111, fcc100):
        for _ in range(2):
            slab = builder("Cu", (2, 2, 4), a=cu_emt.LATTICE_A, vacuum=6.0, periodic=True)
            frames.append(cu_emt._rattle(slab, rng, rng.uniform(0.02, 0.06)))
    frames += cu_emt._md_snapshots(2, 300.0, rng) + cu_emt._md_snapshots(1, 1000.0, rng)
    return [bare(a) for a in frames]


def bare(a: Atoms) -> Atoms:
    """Positions, species, cell and pbc only: what a candidate frame carries into the comparison."""
    return Atoms(a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)


def displaced(a: Atoms, amp: float, rng) -> Atoms:
    """Every atom moved by `amp` Å in a random direction."""
    a = bare(a)
    v = rng.normal(size=a.positions.shape)
    a.positions += amp * v / np.linalg.norm(v, axis=1)[:, None]
    return a


def strained(a: Atoms, eps) -> Atoms:
    a = bare(a)
    a.set_cell(a.cell.array @ np.asarray(eps, float), scale_atoms=True)
    return a


def translated(a: Atoms, shift=(0.37, -1.1, 2.0)) -> Atoms:
    a = bare(a)
    a.positions += shift
    a.wrap()
    return a


def permuted(a: Atoms, rng) -> Atoms:
    return bare(a)[rng.permutation(len(a))]


def rotation(rng) -> np.ndarray:
    return Rotation.from_rotvec(rng.uniform(-np.pi, np.pi, 3)).as_matrix()


def rotated(a: Atoms, rng) -> Atoms:
    """Cell and atoms turned together: the same crystal in another orientation."""
    a = bare(a)
    r = rotation(rng)
    a.set_cell(a.cell.array @ r.T)
    a.positions = a.positions @ r.T
    return a


def removed(a: Atoms, rng, n: int = 1) -> Atoms:
    a = bare(a)
    del a[list(rng.choice(len(a), size=n, replace=False))]
    return a


# the copies an agent could hand to `add`: each must be refused (name -> variant of a protected frame)
VARIANTS = {
    "rigid translation": lambda a, rng: translated(a),
    "permuted atom order": lambda a, rng: permuted(a, rng),
    "rotated cell and atoms": lambda a, rng: rotated(a, rng),
    "2 % isotropic strain": lambda a, rng: strained(a, np.eye(3) * 1.02),
    "2 % uniaxial strain": lambda a, rng: strained(a, np.diag([1.02, 1.0, 1.0])),
    "shear + stretch (1.8 %)": lambda a, rng: strained(a, [[1.015, 0.01, 0], [0.01, 0.985, 0], [0, 0, 1.0]]),
    "2x1x1 supercell": lambda a, rng: bare(a).repeat((2, 1, 1)),
    "non-diagonal supercell (det 2)": lambda a, rng: make_supercell(bare(a), [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]),
    "one atom removed": lambda a, rng: removed(a, rng),
    "2x1x1 supercell + 0.01 Å": lambda a, rng: displaced(bare(a).repeat((2, 1, 1)), 0.01, rng),
    "supercell + one atom removed + 0.005 Å": lambda a, rng: removed(displaced(bare(a).repeat((1, 2, 1)), 0.005,
                                                                                rng), rng),
    "strain + translation + permutation + 0.01 Å": lambda a, rng: permuted(translated(strained(
        displaced(a, 0.01, rng), np.diag([1.02, 0.99, 1.01])), (1.3, 0.2, -0.7)), rng),
}
AMPLITUDES = (1e-4, 1e-3, 5e-3, 0.01, 0.02, 0.03)  # Å: random per-atom displacements that must be caught


@pytest.fixture(scope="module")
def protected(tmp_path_factory):
    frames = holdout_like()
    path = tmp_path_factory.mktemp("guard") / "holdout.xyz"
    write(path, frames, format="extxyz")
    return frames, Guard.from_files({"holdout.xyz": path, "missing.xyz": path.with_name("none.xyz")})


def refused_as(guard: Guard, atoms: Atoms, i: int) -> str:
    reason = guard.duplicate_of(atoms)
    assert reason is not None, f"a copy of holdout frame {i} passed"
    assert re.match(rf"holdout\.xyz frame {i} \(", reason), reason
    return reason


def test_the_protected_frames_are_the_cu_emt_kinds(protected):
    frames, guard = protected
    assert len(frames) == 17 and {len(a) for a in frames} == {16, 30, 31, 32, 108}
    assert any(a.cell.lengths()[2] > 15 for a in frames)  # slabs with vacuum
    for i, a in enumerate(frames):
        assert guard.duplicate_of(a) == f"holdout.xyz frame {i} (same structure hash)"  # the exact rule stays
        assert structure_hash(a) == structure_hash(translated(a, (0, 0, 0)))


@pytest.mark.parametrize("amp", AMPLITUDES)
def test_displaced_copies_are_refused_every_time(protected, amp):
    frames, guard = protected
    rng = np.random.default_rng(int(amp * 1e5))
    for i, a in enumerate(frames):
        for _ in range(3):
            reason = refused_as(guard, displaced(a, amp, rng), i)
            shift = float(re.search(r"max displacement ([0-9.]+) Å", reason).group(1))
            assert shift <= amp + 0.0015, reason  # the best translation: never worse than the true one


@pytest.mark.parametrize("name", list(VARIANTS))
def test_moved_strained_and_repeated_copies_are_refused(protected, name):
    frames, guard = protected
    rng = np.random.default_rng(1)
    for i, a in enumerate(frames):
        refused_as(guard, VARIANTS[name](a, rng), i)


def test_the_reason_says_how_the_copy_differs(protected):
    frames, guard = protected
    rng = np.random.default_rng(2)
    copy = strained(displaced(bare(frames[3]).repeat((2, 1, 1)), 0.004, rng), np.eye(3) * 1.02)
    reason = refused_as(guard, copy, 3)
    assert "2x1x1 supercell, 2.0 % strain, max displacement 0.00" in reason, reason
    reason = refused_as(guard, removed(frames[0], rng), 0)
    assert "1 atom missing" in reason, reason


def test_independent_thermal_frames_pass(protected):
    """300 K frames of the same cell: from other trajectories, and 50 fs (cu_emt's spacing) after or
    before a protected frame of the same trajectory."""
    frames, guard = protected
    trajectory = [bare(a) for a in cu_emt._md_snapshots(6, 300.0, np.random.default_rng(9))]
    for a in trajectory:  # another trajectory than the protected md300 frames'
        assert guard.duplicate_of(a) is None
    same_run = Guard({})
    for i in range(0, 6, 2):
        same_run.protect(trajectory[i], f"holdout.xyz frame {i}")
    for i in range(1, 6, 2):
        assert same_run.duplicate_of(trajectory[i]) is None
        assert same_run.duplicate_of(displaced(trajectory[i - 1], 0.02, np.random.default_rng(i))) is not None


def test_new_structures_pass(protected):
    frames, guard = protected
    rng = np.random.default_rng(3)
    beyond = 2 * MAX_STRAIN
    for a in frames:
        assert guard.duplicate_of(strained(a, np.eye(3) * (1 + beyond))) is None  # a 6 % strain: new data
        assert guard.duplicate_of(strained(a, np.diag([1 - beyond, 1.0, 1.0]))) is None
        few = max(1, int(MISSING_FRACTION * len(a)))
        assert guard.duplicate_of(removed(a, rng, few + 1)) is None  # more than a few atoms removed
        far = displaced(a, 0.1, rng)  # displaced beyond the tolerance
        assert guard.duplicate_of(far) is None
    perfect = bulk("Cu", "fcc", a=cu_emt.LATTICE_A, cubic=True)
    for reps in ((2, 2, 2), (3, 3, 3), (4, 2, 2), (2, 2, 1)):  # the rattled frames' perfect crystal
        assert guard.duplicate_of(perfect.repeat(reps)) is None
    slab = fcc111("Cu", (2, 2, 4), a=cu_emt.LATTICE_A, vacuum=6.0, periodic=True)
    assert guard.duplicate_of(slab.repeat((2, 1, 1))) is None
    assert guard.duplicate_of(bulk("Cu", "bcc", a=2.87, cubic=True).repeat(4)) is None


# molecules (qm7-style): rotation, translation, permutation free; composition must agree

def _moved_molecule(a: Atoms, rng, amp: float = 0.005, mirror: bool = False) -> Atoms:
    a = displaced(a, amp, rng)
    pos = a.positions * ([-1, 1, 1] if mirror else 1)
    a.positions = pos @ rotation(rng).T + [3.0, -2.0, 7.5]
    return permuted(a, rng)


@pytest.fixture(scope="module")
def molecules(tmp_path_factory):
    rng = np.random.default_rng(4)
    mols = [molecule(n) for n in ("CH3CH2OH", "C6H6", "HCN", "CH3CH2NH2", "H2O")]
    mols.append(displaced(molecule("CH3CH2OH"), 0.08, rng))  # a rattled geometry of the same molecule
    path = tmp_path_factory.mktemp("guard") / "holdout.xyz"
    write(path, [bare(m) for m in mols], format="extxyz")
    return mols, Guard.from_files({"holdout.xyz": path})


def test_a_moved_molecule_is_refused(molecules):
    mols, guard = molecules
    rng = np.random.default_rng(5)
    for i, m in enumerate(mols):
        for mirror in (False, True):  # a mirror image has the same energy and mirrored forces
            reason = guard.duplicate_of(_moved_molecule(m, rng, mirror=mirror))
            assert reason is not None and reason.startswith(f"holdout.xyz frame {i} (same molecule"), (i, reason)


def test_other_molecules_pass(molecules):
    mols, guard = molecules
    rng = np.random.default_rng(6)
    assert guard.duplicate_of(molecule("CH3OCH3")) is None  # an isomer of ethanol
    assert guard.duplicate_of(molecule("CH3CH2OH")).startswith("holdout.xyz frame 0 ")
    for m in (mols[0], mols[1], mols[3]):
        assert guard.duplicate_of(_moved_molecule(m, rng, amp=0.15)) is None
    bent = molecule("HCN")  # linear along z: bending moves distances only to second order, the alignment
    bent.positions[2, 0] += 0.25  # sees it (H off the axis by 0.25 Å: distances change by < 0.03 Å)
    assert guard.duplicate_of(bent) is None
    flat = molecule("C6H6")  # planar in xy: one H out of the plane by 0.25 Å
    flat.positions[6, 2] += 0.25
    assert guard.duplicate_of(flat) is None
    fewer = bare(mols[0])
    del fewer[8]
    assert guard.duplicate_of(fewer) is None  # molecules: an atom removed is new (documented)
