"""Property metrics in the scorecard (issue 32): the same library as validation, reference values sealed
at init, refused at init when there is nothing to compare with, a model without an EOS minimum failing
the constraint (with the reason) and not the trial, and a silent knob refused with the option that
enables it."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from mlipilot_testkit import FAST_SCORECARD, SHIPPED_MODEL, copy_trainer, exported, user_benchmark

from mlipilot import properties as P
from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.properties import PROPERTY_REFERENCE, compute_values, property_metrics
from mlipilot.scorecard.spec import load_spec
from mlipilot.validation.base import ValidationContext
from mlipilot.validation.checks import CHECK_KINDS

PROPERTY_CONSTRAINTS = [
    {"metric": "bulk_modulus_error", "max": 15.0, "unit": "%"},
    {"metric": "elastic_error_max", "max": 25.0, "unit": "%"},
    {"metric": "vacancy_formation_error", "max": 0.15, "unit": "eV"},
]


def props_benchmark(d, data, reference: bool = True, values: dict | None = None):
    bench = user_benchmark(d, data, "cu_props_fast")
    card = json.loads(json.dumps(FAST_SCORECARD))
    card["constraints"] += PROPERTY_CONSTRAINTS
    if not reference:
        card["stability"].pop("reference")
        card["stability"].pop("reference_force_rmse_meV_A")
    if values is not None:
        card["properties"] = {"reference_values": values}
    (bench / "scorecard.yaml").write_text(yaml.safe_dump(card, allow_unicode=True))
    return bench


@pytest.fixture(scope="module")
def model_calc(tmp_path_factory):
    from mlipilot.scorecard.evaluate import load_model

    d = tmp_path_factory.mktemp("props_model")
    shutil.copy(SHIPPED_MODEL, d / "model.model")
    return load_model(exported(d / "model.model"))


def test_a_property_metric_is_the_validation_checks_value_for_the_same_model_and_cell(model_calc):
    """One library: the scorer's value and validation's, for the same cell and strain, to the bit."""
    ctx = ValidationContext(element="Cu", lattice_a=3.59, reference=EMT, holdout=[])
    ours = compute_values(model_calc, "Cu", 3.59, ["B", "C11", "C12", "C44", "C_prime", "E_vac", "E_surf_111"], strain=0.005,
                          vacancy_supercell=3, facets=("111",), layers=5)
    theirs = {}
    for kind, params in (("bulk_modulus", {}),
                         ("elastic_constants", {"strain": 0.005, "quantities": ["C11", "C12", "C44", "C_prime"]}),
                         ("vacancy_formation", {"supercell": 3}), ("surface_energy", {"facets": ["111"], "layers": 5})):
        for m in CHECK_KINDS[kind].load()(model_calc, ctx, {**CHECK_KINDS[kind].params, **params}):
            theirs[m.quantity] = m.value
    assert {q: ours[q] for q in theirs} == theirs and "C_prime" in theirs
    # the shipped fix (the expert's accepted model) is the paper's "accepted, not valid" case
    assert ours["B"] < 0.8 * P.equilibrium(EMT(), "Cu", 3.59)[1]


class NoMinimum(Calculator):
    """Energy falls without bound as the cell shrinks: the EOS has no minimum (a model that blew up)."""
    implemented_properties = ["energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        import numpy as np

        v = atoms.get_volume() / len(atoms)
        self.results = {"energy": float(v * len(atoms)), "forces": np.zeros((len(atoms), 3)), "stress": np.zeros(6)}


def test_a_model_without_an_eos_minimum_fails_the_constraint_with_the_reason(tmp_path):
    from mlipilot.scorecard.verdict import assess

    card = dict(FAST_SCORECARD, constraints=FAST_SCORECARD["constraints"] + PROPERTY_CONSTRAINTS)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(card, allow_unicode=True))
    spec = load_spec(tmp_path / "s.yaml")
    ref = tmp_path / PROPERTY_REFERENCE
    ref.write_text(json.dumps({"B": 134.5, "C11": 172.6, "C12": 115.5, "C44": 90.0, "E_vac": 1.24}))
    metrics, notes, seconds = property_metrics(NoMinimum(), spec, ref, progress=lambda s: None)
    assert metrics == {m["metric"]: None for m in PROPERTY_CONSTRAINTS}
    assert all("no energy minimum" in notes[m] for m in metrics)
    # scored as the worst violation of those constraints — infeasible, not a failed trial
    a = assess({"energy_rmse": 10.0, "force_rmse": 50.0, "md_failed_runs": 0, **metrics}, spec)
    assert not a.feasible and a.violations["bulk_modulus_error"] >= 1e5 and math.isfinite(a.composite)
    # the right answer for EMT itself is 0 %
    good, notes, _ = property_metrics(EMT(), spec, ref, progress=lambda s: None)
    assert not notes and good["bulk_modulus_error"] < 0.1 and good["property_B"] == pytest.approx(134.46, abs=0.05)


@pytest.mark.slow  # two inits (the second computes and seals the reference)
def test_a_property_metric_without_a_reference_is_refused_at_init_with_the_fix(tmp_path, default_data):
    from mlipilot.rundir import init_run

    bench = props_benchmark(tmp_path / "bench", default_data, reference=False)
    with pytest.raises(MLIPilotError, match="reference_values") as e:
        init_run(str(bench), tmp_path / "run", executor="debug", progress=lambda s: None)
    assert "stability: reference" in str(e.value) and not (tmp_path / "run").exists()
    # the fix: the user's own (DFT, experiment) values, sealed like a computed reference
    values = {"B": 140.0, "C11": 176.2, "C12": 124.9, "C44": 81.8, "E_vac": 1.28}
    bench = props_benchmark(tmp_path / "bench2", default_data, reference=True, values=values)
    root = init_run(str(bench), tmp_path / "run2", executor="debug", progress=lambda s: None)
    from mlipilot.run_config import load_run_config

    store = load_run_config(root).store
    # C' is derived from the user's C11 and C12, as the model's is
    assert json.loads((store / PROPERTY_REFERENCE).read_text()) == {**values, "C_prime": pytest.approx(25.65)}
    assert PROPERTY_REFERENCE in json.loads((store / "seal.json").read_text())["files"]


@pytest.mark.slow  # an init and a trial
def test_the_sealed_reference_cannot_be_changed(tmp_path, default_data, good_model):
    """The agent's train.py cannot reach the store (the sandbox hides it); a reference changed by any
    other route breaks the seal and the next trial is refused."""
    from mlipilot.rundir import init_run
    from mlipilot.run_config import load_run_config
    from mlipilot.trial import TrialRunner

    bench = props_benchmark(tmp_path / "bench", default_data)
    root = init_run(str(bench), tmp_path / "run", executor="debug", progress=lambda s: None)
    cfg = load_run_config(root)
    ref = cfg.store / PROPERTY_REFERENCE
    before = ref.read_bytes()
    attack = (f"import os\nfor p in [{str(ref)!r}, {str(cfg.store)!r}]:\n"
              "    try:\n        open(p, 'w').write('{\"B\": 93.0}')\n        print('WROTE', p)\n"
              "    except OSError as e:\n        print('REFUSED', type(e).__name__)\n")
    (root / "train" / "train.py").write_text(attack + copy_trainer(good_model))
    record = TrialRunner(cfg, progress=lambda s: None).run("lower the bar")
    assert ref.read_bytes() == before
    log = (tmp_path / "run.mlipilot-store" / "trials").rglob("train.log")
    assert "WROTE" not in "".join(p.read_text() for p in log)
    assert record.metrics["bulk_modulus_error"] > 15  # judged against the sealed reference
    ref.write_text(json.dumps({**json.loads(before), "B": 93.0}))  # a rogue process, outside the sandbox
    (root / "train" / "train.py").write_text(copy_trainer(good_model) + "# again\n")
    with pytest.raises(MLIPilotError, match="property_reference.json"):
        TrialRunner(cfg, progress=lambda s: None).run("after tampering")


def test_stress_weight_under_a_loss_without_stress_is_refused_naming_the_loss(tmp_path, fast_benchmark):
    from mlipilot.rundir import init_run
    from mlipilot.run_config import load_run_config
    from mlipilot.workspace_tools import ToolError, WorkspaceTools

    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    tools = WorkspaceTools(load_run_config(root))
    with pytest.raises(ToolError) as e:
        tools.set_options({"stress_weight": 100.0})
    assert "stress_weight has no effect under loss: weighted" in str(e.value) and "set loss: stress" in str(e.value)
    assert "stress_weight: 0.0" in (root / "train" / "config.yaml").read_text()  # nothing written
    out = str(tools.set_options({"stress_weight": 10.0, "loss": "stress"}))  # with the loss that enables it
    assert "stress_weight: 0.0 -> 10.0" in out and "loss" in out
    with pytest.raises(ToolError, match="has no effect without swa: true"):
        tools.edit_file("train/config.yaml", "swa: false", "swa: false\nswa_energy_weight: 1000.0")


@pytest.mark.slow  # init (the sealed reference) and a real baseline trial, through the console script
def test_cu_props_baseline_prints_property_metrics_with_bounds_and_is_infeasible(tmp_path):
    """Issue 32's first acceptance line: `mlipilot init cu_props DIR` then `mlipilot trial -m baseline`.
    Measured on the default data (seed 0): the shipped baseline's B is 35 % low, C11..C44 up to 43 %, E_vac
    0.94 eV off — each bound missed by 2x or more; the small data set trains a worse model still."""
    import subprocess

    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    init = subprocess.run(["mlipilot", "init", "cu_props", str(tmp_path / "run"), "--size", "small", "--executor",
                           "local"], capture_output=True, text=True, env=env, timeout=900)
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    assert "property reference: B 134.5, C11 172.6, C12 115.5, C44 89.96, C_prime 28.53, E_vac 1.238" in init.stdout
    trial = subprocess.run(["mlipilot", "trial", "-m", "baseline", "--run", str(tmp_path / "run")],
                           capture_output=True, text=True, env=env, timeout=1500)
    assert trial.returncode == 0, trial.stdout[-2000:] + trial.stderr[-2000:]
    line = next(x for x in trial.stdout.splitlines() if "properties:" in x)
    for metric, bound in (("bulk_modulus_error", "≤ 15"), ("elastic_error_max", "≤ 25"),
                          ("vacancy_formation_error", "≤ 0.15")):
        assert f"({bound})" in line.split(metric, 1)[1].split(",")[0], line
    verdict = next(x for x in trial.stdout.splitlines() if "trial 1: ACCEPTED" in x)
    assert "infeasible" in verdict and any(m in verdict.split("infeasible", 1)[1] for m in (
        "bulk_modulus_error", "elastic_error_max", "vacancy_formation_error")), verdict
