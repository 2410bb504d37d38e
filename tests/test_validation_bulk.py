"""Bulk-property validation checks (mlipilot.validation.bulk_properties) on EMT, a wrong pair potential,
a broken calculator and real MACE models. Fast: no training."""

from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from mlipilot_testkit import SHIPPED_MODEL, exported, untrained_mace

from mlipilot.validation.base import Measurement, ValidationContext
from mlipilot.validation.checks import CHECK_KINDS

KINDS = ["lattice_constant", "bulk_modulus", "elastic_constants", "vacancy_formation", "surface_energy", "phonons"]
CTX = ValidationContext(element="Cu", lattice_a=3.59, reference=EMT, holdout=[])


def run_all(calc) -> dict[str, Measurement]:
    out: dict[str, Measurement] = {}
    for kind in KINDS:
        for m in CHECK_KINDS[kind].load()(calc, CTX, dict(CHECK_KINDS[kind].params)):
            out[m.quantity] = m
    return out


def load_mace(model, tmp_path):
    from mlipilot.scorecard.evaluate import load_model

    shutil.copy(model, tmp_path / "model.model")  # the export lands beside the model: keep tests/data clean
    return load_model(exported(tmp_path / "model.model"))


def test_emt_against_itself_is_exact_and_physical():
    ms = run_all(EMT())
    assert set(ms) == {"a", "B", "C11", "C12", "C44", "E_vac", "E_surf_111", "E_surf_100", "nu_X_max", "nu_L_max"}
    assert all(m.error is not None and m.error < 1e-6 for m in ms.values()), ms
    v = {q: m.value for q, m in ms.items()}
    # Measured (EMT Cu): a 3.5898 Å, B 134.46 GPa, C11 172.58, C12 115.45, C44 89.92 GPa, E_vac 1.238 eV
    # (unrelaxed), E_surf 111: 1.044, 100: 1.134 J/m², nu_max X 8.141, L 8.068 THz.
    assert 3.58 < v["a"] < 3.61 and 130 < v["B"] < 140
    assert v["C11"] > v["C12"] > 0 and v["C44"] > 0
    assert v["B"] == pytest.approx((v["C11"] + 2 * v["C12"]) / 3, rel=0.01)  # EOS and strains agree
    assert 1.1 < v["E_vac"] < 1.3
    assert 0 < v["E_surf_111"] < v["E_surf_100"]
    assert 4 < v["nu_X_max"] < 10 and 4 < v["nu_L_max"] < 10
    assert "unrelaxed" in ms["E_vac"].detail


def test_a_wrong_pair_potential_shows_large_errors():
    ms = run_all(LennardJones(sigma=2.3, epsilon=0.4, rc=6.0))
    # Measured: a 3.564 Å (0.7 %), B 367 GPa (173 %), C11 515 (198 %), C12 293 (154 %), C44 293 (226 %),
    # E_vac 3.04 eV (1.80 eV off), E_surf 2.77/2.92 J/m² (165/157 %), nu_max X 14.5 / L 14.5 THz (78/80 %).
    assert ms["a"].error < 3  # right lattice constant, wrong everything else
    for q in ("B", "C11", "C12", "C44", "E_surf_111", "E_surf_100", "nu_X_max", "nu_L_max"):
        assert ms[q].error > 50, ms[q]
    assert ms["E_vac"].error > 1.0
    assert ms["C12"].value == pytest.approx(ms["C44"].value, rel=0.01)  # Cauchy relation of a pair potential


class Raising(EMT):
    def calculate(self, *args, **kwargs):
        raise RuntimeError("model exploded")


class NonFinite(EMT):
    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results = {k: v * np.nan for k, v in self.results.items()}


@pytest.mark.parametrize("calc, why", [(Raising(), "RuntimeError: model exploded"), (NonFinite(), "non-finite")])
def test_a_broken_model_is_a_result_not_a_crash(calc, why):
    ms = run_all(calc)
    assert len(ms) == 10
    for m in ms.values():
        assert m.value is None and m.error is None and why in m.detail, m
        assert m.reference is not None and math.isfinite(m.reference)  # the reference still measured


def test_a_model_that_fails_only_on_forces_fails_only_phonons():
    class NoForces(EMT):
        def get_forces(self, atoms=None):
            raise RuntimeError("no forces")

    ms = run_all(NoForces())
    assert {q for q, m in ms.items() if m.error is None} == {"nu_X_max", "nu_L_max"}
    assert "RuntimeError: no forces" in ms["nu_X_max"].detail


def test_without_a_bulk_reference_every_check_says_why():
    ctx = ValidationContext(element=None, lattice_a=None, reference=None, holdout=[])
    ms = CHECK_KINDS["elastic_constants"].load()(EMT(), ctx, {"strain": 0.005})
    assert [m.quantity for m in ms] == ["C11", "C12", "C44"] and all(m.error is None and m.detail for m in ms)


def test_shipped_mace_model(tmp_path):
    calc = load_mace(SHIPPED_MODEL, tmp_path)
    t0 = time.perf_counter()
    ms = run_all(calc)
    seconds = time.perf_counter() - t0
    print(f"shipped model, all six bulk checks: {seconds:.1f} s")
    # Measured (cu_fix.model, one thread, ~3 s): a 3.599 Å (0.24 %), B 92.9 GPa (31 %), C11 174.4 (1.1 %),
    # C12 52.0 (55 %), C44 70.5 (22 %), E_vac 1.032 eV (0.21 eV), E_surf 111 0.984 (5.7 %), 100 0.817 (28 %),
    # nu_max X 7.60 (6.6 %), L 7.07 THz (12 %).
    assert all(m.value is not None and math.isfinite(m.error) for m in ms.values()), ms
    assert ms["a"].error < 2 and ms["B"].error < 60
    assert seconds < 60


def test_untrained_mace_model_fails_cleanly(tmp_path):
    calc = load_mace(untrained_mace(tmp_path / "untrained.model", [29], [0.0]), tmp_path)
    ms = run_all(calc)
    # Random weights: the energy has no minimum within ±12 % of a0, so every property fails with that reason.
    assert all(m.error is None and "no energy minimum" in m.detail for m in ms.values()), ms
