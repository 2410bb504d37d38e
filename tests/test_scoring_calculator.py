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


def test_per_atom_energies_are_mace_calculators_own():
    atoms = _structures()["cu"]
    calc = reference_calculator(list(atoms.numbers))
    assert isinstance(calc, ScoringCalculator)
    atoms.calc = calc
    e_atoms = atoms.get_potential_energies()  # not on the fast path: MACECalculator's code answers
    assert e_atoms.shape == (len(atoms),)
    assert np.isclose(e_atoms.sum(), atoms.get_potential_energy(), atol=1e-4)
