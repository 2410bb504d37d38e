"""The molecular benchmark: offline init from the shipped set, molecular MD checks, and (slow, real
training) an infeasible baseline whose violation E0s from isolated atoms plus energy re-weighting cut by
an order of magnitude (accepted; feasible only for some training seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlipilot_testkit import exported, untrained_mace
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.scorecard.evaluate import score_model
from mlipilot.scorecard.molecular_stability import stability_metrics as molecular_stability_metrics
from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.verdict import assess
from mlipilot.trial import TrialRunner

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
    """The shipped baseline is infeasible; the known fix (E0s from isolated B3LYP atoms + energy
    re-weighting, 30 epochs) is accepted because it cuts the violation by far more than training noise.

    Whether the fix is *feasible* is a coin toss on this tiny model, so it is printed, not asserted.
    Measured with training seeds 1, 2, 3 (mace-torch's seed, which the harness sets from [noise] base_seed;
    one thread, 2-core CPU), holdout
    meV/atom (E, E of unseen molecules) and meV/Å (F); bounds E 80, E unseen 80, F 700:
      baseline (8 epochs)   E 828-1108   E unseen 838-1125   F 860-1056   total violation 19.2-26.1
      the fix (30 epochs)   E 53.6-100.8 E unseen 54.4-119.4 F 566-651    total violation 0-0.75
    (seed 1 infeasible: E +0.26, E unseen +0.49, as in the issue's failure on another machine). A stronger
    fix is not safe either: 64 channels + EMA (ema_decay 0.99), seeds 1-6, gave E unseen 36-96 (seed 5
    infeasible). So the assertions are the direction, with margins far outside that spread: the fix's
    total violation is <= 4 % of the baseline's (asserted: 15 %), its energy RMSE <= 12 % (asserted: 25 %).
    MD stayed stable in all 27 qm7 trainings measured (these and other fix variants: 0 failed runs, max
    bond deviation <= 0.22 Å of the 0.5 Å allowed), so that is asserted as is; an untrained model's
    energy RMSE (4209) is 42x the worst fix's."""
    t = TrialRunner(qm7_run, progress=print)
    base = t.run("baseline: the shipped configuration")
    assert base["verdict"] == "accepted" and not base["feasible"]
    assert "energy_rmse" in base["violations"]
    cfg = qm7_run.root / "train" / "config.yaml"
    text = cfg.read_text().replace("E0s: average", f'E0s: "{E0S}"').replace("energy_weight: 1.0", "energy_weight: 100.0")
    cfg.write_text(text.replace("forces_weight: 100.0", "forces_weight: 10.0").replace("max_num_epochs: 8", "max_num_epochs: 30"))
    fix = t.run("E0s from isolated B3LYP atoms and energy re-weighting, 30 epochs")
    keys = ("energy_rmse", "energy_rmse_unseen_molecule", "force_rmse", "md_failed_runs", "md_max_bond_deviation")
    print("baseline", {k: base["metrics"][k] for k in keys}, base["violations"])
    print("fix", {k: fix["metrics"][k] for k in keys}, "feasible" if fix["feasible"] else fix["violations"])
    assert fix["verdict"] == "accepted", fix["reason"]
    assert sum(fix["violations"].values()) <= 0.15 * sum(base["violations"].values())
    assert fix["metrics"]["energy_rmse"] <= 0.25 * base["metrics"]["energy_rmse"]
    assert fix["metrics"]["md_failed_runs"] == 0 and fix["metrics"]["md_max_bond_deviation"] < 0.5
    # an untrained model on the same scorecard fails
    untrained = tmp_path / "untrained.model"
    untrained_mace(untrained, [1, 6, 7, 8], [-13.6, -1029.8, -1485.3, -2042.5], r_max=5.0, avg_num_neighbors=3.0)
    bad = score_model(exported(untrained), load_spec(SPEC), qm7_run.store / "holdout.xyz", progress=print).metrics
    print("untrained", {k: bad[k] for k in keys})
    assert not assess(bad, load_spec(SPEC)).feasible
    assert bad["energy_rmse"] > 10 * fix["metrics"]["energy_rmse"]
    assert [r["verdict"] for r in Ledger(qm7_run.store / "ledger.jsonl").trials()] == ["accepted", "accepted"]
