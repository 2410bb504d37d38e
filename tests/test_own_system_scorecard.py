"""The scorecard on a user's own system, without training: strict keys with the nearest valid
name, reference calculators by name, per-element / worst-group / glob-group / stress metrics, and
MD from the user's structures (NVT, ramp, NPT) with its failure checks, driven by ASE calculators
standing in for a model (EMT is the truth here, so it must pass; LJ with a wrong size must fail)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.io import read

from mlipilot.datasets.alloy_emt import SCORECARD, write_benchmark
from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.accuracy import accuracy_metrics
from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.structure_stability import pick_structures, stability_metrics


@pytest.fixture(scope="module")
def alloy(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("cuau"), ("Cu", "Au"), seed=0, size="small")


def card(tmp_path: Path, edit=None) -> Path:
    d = copy.deepcopy(SCORECARD)
    if edit:
        edit(d)
    path = tmp_path / "scorecard.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True))
    return path


@pytest.mark.parametrize("edit, field, hint", [
    (lambda d: d["stability"].update(min_distnce_factor=0.5), "stability.min_distnce_factor", "min_distance_factor"),
    (lambda d: d["stability"].update(refrence={"name": "emt"}), "stability.refrence", "'reference'"),
    (lambda d: d.update(noise_margn=0.1), "noise_margn", "noise_margin"),
    (lambda d: d["stability"]["runs"][0].update(temprature_K=5), "stability.runs[0].temprature_K", "temperature_K"),
    (lambda d: d["constraints"][0].update(metric="energy_rmes"), "constraints[0].metric", "energy_rmse"),
    (lambda d: d["stability"].update(reference={"name": "emtt"}), "stability.reference.name", "emt"),
    (lambda d: d["stability"].update(reference={"name": "nosuchpkg.mod:Calc"}), "stability.reference.name",
     "cannot import"),
    (lambda d: d["stability"]["runs"][0].update(ensemble="nve"), "stability.runs[0].ensemble", "nvt, npt"),
    (lambda d: d["stability"].update(kind="bulkk"), "stability.kind", "structures"),
])
def test_scorecard_typos_fail_at_load_with_the_nearest_name(tmp_path, edit, field, hint):
    with pytest.raises(MLIPilotError) as e:
        load_spec(card(tmp_path, edit))
    msg = str(e.value)
    assert "scorecard.yaml" in msg and f"'{field}'" in msg and hint in msg, msg
    assert "\n" not in msg


def test_reference_by_ase_name_with_params_and_by_dotted_path(tmp_path):
    spec = load_spec(card(tmp_path, lambda d: d["stability"].update(
        reference={"name": "lj", "params": {"sigma": 2.3, "epsilon": 0.1, "rc": 6.0}})))
    calc = spec.stability.reference.make()
    assert isinstance(calc, LennardJones) and calc.parameters.sigma == 2.3
    spec = load_spec(card(tmp_path, lambda d: d["stability"].update(reference="ase.calculators.emt:EMT")))
    assert isinstance(spec.stability.reference.make(), EMT)


def test_new_metrics_per_element_worst_group_glob_group_and_stress(alloy):
    frames = read(alloy / "holdout.xyz", index=":")
    exact = accuracy_metrics(EMT(), frames, ["force_rmse_md*", "energy_rmse_bulk*"])
    assert exact["energy_rmse"] < 1e-3 and exact["force_rmse_Au"] < 1e-3 and exact["stress_rmse"] < 1e-3  # extxyz rounding
    assert exact["force_rmse_md*"] < 1e-3
    lj = LennardJones(sigma=2.3, epsilon=0.05, rc=6.0)
    wrong = accuracy_metrics(lj, frames, ["force_rmse_md*"])
    groups = {k.removeprefix("force_rmse_"): v for k, v in wrong.items()
              if k.startswith("force_rmse_") and k[11:] in {f.info["config_type"] for f in frames}}
    assert wrong["force_rmse_max_group"] == pytest.approx(max(groups.values()))
    md = [f for f in frames if f.info["config_type"].startswith("md")]
    assert wrong["force_rmse_md*"] == pytest.approx(accuracy_metrics(lj, md)["force_rmse"])
    assert {"force_rmse_Cu", "force_rmse_Au", "stress_rmse"} <= set(wrong) and wrong["stress_rmse"] > 1.0


def test_structures_are_picked_deterministically_and_repeated_to_min_atoms(alloy):
    frames = read(alloy / "holdout.xyz", index=":")
    spec = load_spec(alloy / "scorecard.yaml")
    picks = pick_structures(frames, spec.stability.structures)
    again = pick_structures(frames, spec.stability.structures)
    assert [p.info["config_type"] for p in picks] == ["bulk_strain", "md1200"]
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(picks, again))
    big = pick_structures(frames, type(spec.stability.structures)(("vacancy",), 1, 4, 100))
    assert len(big[0]) >= 100 and len(big[0]) % 31 == 0  # a 31-atom vacancy cell, repeated


def test_md_on_user_structures_passes_for_the_truth_and_fails_for_a_wrong_model(alloy):
    frames = read(alloy / "holdout.xyz", index=":")
    spec = load_spec(alloy / "scorecard.yaml")
    good = stability_metrics(EMT(), spec, frames)
    assert good["md_failed_runs"] == 0, good["md_runs"]
    assert {n.split("_")[0] for n in good["md_runs"]} == {"nvt900", "npt600"}
    assert good["md_max_volume_ratio"] < 1.1 and good["md_reference_force_rmse"] < 1e-3
    # LJ with a far too large sigma pushes every pair apart: the NPT cell blows up
    bad = stability_metrics(LennardJones(sigma=3.2, epsilon=0.2, rc=7.0), spec, frames)
    reasons = [r["reason"] or "" for r in bad["md_runs"].values()]
    assert bad["md_failed_runs"] >= 1 and any("volume" in r or "force error" in r for r in reasons), reasons


def test_readme_examples_are_what_the_example_writes_and_load(alloy, tmp_path):
    """docs/own-system.md shows benchmark.yaml and the scorecard, docs/validation.md the validation spec:
    all must be true."""
    import re

    from mlipilot.benchmark import resolve_benchmark
    from mlipilot.errors import check_keys
    from mlipilot.benchmark import DATA_FILE_KEYS, TOP_KEYS

    docs = Path(__file__).resolve().parent.parent / "docs"  # the pages that show them
    readme = (docs / "own-system.md").read_text() + (docs / "validation.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", readme, re.S | re.M)]
    bench_doc = next(b for b in blocks if "data" in b)
    card_doc = next(b for b in blocks if "constraints" in b)
    written = yaml.safe_load((alloy / "benchmark.yaml").read_text())
    assert bench_doc == written
    check_keys(bench_doc, TOP_KEYS, "README")
    check_keys(bench_doc["data"], DATA_FILE_KEYS, "README")
    assert card_doc == yaml.safe_load((alloy / "scorecard.yaml").read_text())
    validation_doc = next(b for b in blocks if "checks" in b and b["name"] == written["name"] + "_validation")
    assert validation_doc == yaml.safe_load((alloy / "validation.yaml").read_text())
    (tmp_path / "scorecard.yaml").write_text(yaml.safe_dump(card_doc, allow_unicode=True))
    assert load_spec(tmp_path / "scorecard.yaml").stability.kind == "structures"
    assert resolve_benchmark(str(alloy)).isolated_atoms == {"Cu": 3.51, "Au": 3.8}


def test_explicit_md_structures_are_all_used_in_file_order(alloy):
    from mlipilot.scorecard.structure_stability import EXPLICIT

    frames = read(alloy / "holdout.xyz", index=":")[:3]
    for f in frames:
        f.info[EXPLICIT] = True
        f.info["config_type"] = "same"
    spec = load_spec(alloy / "scorecard.yaml")
    pick = type(spec.stability.structures)(("*",), 1, 4, 0)
    picked = pick_structures(frames, pick)
    assert len(picked) == 3 and [len(p) for p in picked] == [len(f) for f in frames]


def test_ramp_on_a_molecule_in_vacuum_and_npt_skipped_without_a_cell(tmp_path):
    """kind structures takes non-periodic frames too: a heating ramp runs, NPT is skipped (no cell)."""
    from ase.build import molecule

    mol = molecule("CH4")
    mol.calc = EMT()
    mol.info.update(REF_energy=mol.get_potential_energy(), config_type="mol")
    spec = load_spec(card(tmp_path, lambda d: d["stability"].update(
        runs=[{"name": "ramp", "temperature_K": [100, 400], "steps": 30, "timestep_fs": 0.5},
              {"name": "npt", "ensemble": "npt", "temperature_K": 300, "steps": 30}],
        reference=None, structures={"min_atoms": 50})))
    m = stability_metrics(EMT(), spec, [mol])
    assert m["md_runs"]["ramp_0_CH4"]["steps"] == 30 and m["md_runs"]["npt_0_CH4"]["skipped"]
