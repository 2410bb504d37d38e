"""The scorer's calculator gives MACECalculator's numbers to the bit, only faster per call."""

import mace  # noqa: F401  -- before e3nn
import numpy as np
import pytest
from ase.build import bulk, molecule
from mace.calculators import MACECalculator

from mlipilot.scorecard.calculator import ScoringCalculator
from mlipilot.scorecard.throughput import reference_calculator


def _structures():
    mol = molecule("C6H6") + molecule("CH4")
    mol.positions[12:] += 4.0  # two molecules in vacuum, no cell
    cu = bulk("Cu", cubic=True).repeat(2)
    cu.rattle(0.05, seed=1)
    alloy = cu.copy()
    alloy.symbols[::3] = "Au"
    alloy.set_cell(alloy.cell * 1.02, scale_atoms=True)  # strained: a stress that is not zero
    return {"molecule": mol, "cu": cu, "alloy": alloy}


@pytest.mark.parametrize("name", ["molecule", "cu", "alloy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_results_as_mace_calculator(name, dtype):
    atoms = _structures()[name]
    model = reference_calculator(list(atoms.numbers)).models[0]
    if dtype == "float64":
        model = model.double()
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc = ScoringCalculator(models=[model], device="cpu", default_dtype=dtype)
    theirs.calc = MACECalculator(models=[model], device="cpu", default_dtype=dtype)
    rng = np.random.default_rng(0)
    for _ in range(3):  # a moved structure is recomputed, not served from a cache
        step = rng.normal(0, 0.02, atoms.positions.shape)
        for a in (ours, theirs):
            a.positions += step
        assert ours.get_potential_energy() == theirs.get_potential_energy()
        np.testing.assert_array_equal(ours.get_forces(), theirs.get_forces())
        if atoms.pbc.any():
            np.testing.assert_array_equal(ours.get_stress(), theirs.get_stress())
            assert np.abs(ours.get_stress()).max() > 0
    assert abs(ours.get_forces()).max() > 0
    if not atoms.pbc.any():  # skipped in the force call, still MACECalculator's when asked for
        assert "stress" not in ours.calc.results
        np.testing.assert_array_equal(ours.get_stress(), theirs.get_stress())


def test_per_atom_energies_are_mace_calculators_own():
    atoms = _structures()["cu"]
    calc = reference_calculator(list(atoms.numbers))
    assert isinstance(calc, ScoringCalculator)
    atoms.calc = calc
    e_atoms = atoms.get_potential_energies()  # not on the fast path: MACECalculator's code answers
    assert e_atoms.shape == (len(atoms),)
    assert np.isclose(e_atoms.sum(), atoms.get_potential_energy(), atol=1e-4)


def test_a_prebuilt_architecture_gives_the_same_model_and_is_used_once(tmp_path, good_model):
    """The train job builds an earlier trial's architecture while training runs; the scorer loads the
    new weights into it: the same numbers as a fresh build, and a module never serves two models."""
    import shutil

    import torch
    from mlipilot_testkit import exported

    from mlipilot import model_export
    from mlipilot.scorecard.evaluate import load_model

    fresh = exported(good_model)
    other = tmp_path / "other"  # another trial's export: same architecture, other weights
    shutil.copytree(fresh, other)
    state = torch.load(other / "weights.pt", weights_only=True)
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, other / "weights.pt")

    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    expected = atoms.copy()
    expected.calc = load_model(fresh)
    model_export.prebuild(other)  # what the job does with the previous trial's model
    built = next(iter(model_export._BUILT.values()))
    got = atoms.copy()
    got.calc = load_model(fresh)
    assert got.calc.models[0] is built and not model_export._BUILT  # taken, once
    # two fresh builds of this float32 model already differ by 1e-7 eV/Å in a force (the kernels' sums)
    assert got.get_potential_energy() == pytest.approx(expected.get_potential_energy(), rel=1e-6)
    np.testing.assert_allclose(got.get_forces(), expected.get_forces(), rtol=1e-5, atol=1e-6)
    assert load_model(other).models[0] is not built  # built afresh: the prebuilt module is the first's
