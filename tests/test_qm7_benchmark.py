"""The molecular benchmark: offline init from the shipped set, molecular MD checks, and (slow, real
training) an infeasible baseline fixed by E0s from isolated atoms plus energy re-weighting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import untrained_mace
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.scorecard.evaluate import score_model
from mlipilot.scorecard.molecular_stability import molecular_stability_metrics
from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.verdict import assess
from mlipilot.trial import Trial

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "scorecards" / "qm7_b3lyp.yaml"
E0S = "{1: -13.61311591800631, 6: -1029.8065882290819, 7: -1485.2757104517252, 8: -2042.4704390553575}"


class FreeFlight(Calculator):
    """No forces at all: molecules fly apart, which the topology checks must catch."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


@pytest.fixture(scope="module")
def qm7_run(tmp_path_factory):
    root = init_run("qm7_b3lyp", tmp_path_factory.mktemp("qm7") / "run", executor="debug", progress=print)
    return load_run_config(root)


def test_init_is_offline_and_holdout_private(qm7_run):
    assert (qm7_run.root / "data" / "train.xyz").is_file() and not (qm7_run.root / "data" / "holdout.xyz").exists()
    holdout = read(qm7_run.store / "holdout.xyz", ":")
    assert {f.info["config_type"] for f in holdout} == {"unseen_molecule", "seen_molecule"}


def test_broken_topology_is_caught(qm7_run):
    frames = read(qm7_run.store / "holdout.xyz", ":")
    m = molecular_stability_metrics(FreeFlight(), load_spec(SPEC), frames)
    assert m["md_failed_runs"] == 4
    assert all(("bond" in r["reason"] or "H detached" in r["reason"]) for r in m["md_runs"].values())


@pytest.mark.slow
def test_baseline_infeasible_and_known_fix_accepted(qm7_run, tmp_path):
    t = Trial(qm7_run, progress=print)
    base = t.run("baseline: the shipped configuration")
    assert base["verdict"] == "accepted" and not base["feasible"]
    assert "energy_rmse" in base["violations"]
    cfg = qm7_run.root / "train" / "config.yaml"
    text = cfg.read_text().replace("E0s: average", f'E0s: "{E0S}"').replace("energy_weight: 1.0", "energy_weight: 100.0")
    cfg.write_text(text.replace("forces_weight: 100.0", "forces_weight: 10.0").replace("max_num_epochs: 8", "max_num_epochs: 30"))
    fix = t.run("E0s from isolated B3LYP atoms and energy re-weighting, 30 epochs")
    print({k: fix["metrics"][k] for k in ("energy_rmse", "energy_rmse_unseen_molecule", "force_rmse", "md_failed_runs")})
    assert fix["verdict"] == "accepted" and fix["feasible"], fix["reason"]
    assert fix["metrics"]["md_failed_runs"] == 0 and fix["metrics"]["md_max_bond_deviation"] < 0.5
    # an untrained model on the same scorecard fails
    untrained = tmp_path / "untrained.model"
    untrained_mace(untrained, [1, 6, 7, 8], [-13.6, -1029.8, -1485.3, -2042.5], r_max=5.0, avg_num_neighbors=3.0)
    bad = score_model(untrained, load_spec(SPEC), qm7_run.store / "holdout.xyz", progress=print)
    assert not assess(bad, load_spec(SPEC)).feasible
    assert bad["energy_rmse"] > 10 * fix["metrics"]["energy_rmse"]
    assert [r["verdict"] for r in Ledger(qm7_run.store / "ledger.jsonl").trials()] == ["accepted", "accepted"]
