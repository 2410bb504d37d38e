"""Data actions on a real run directory (EMT reference, debug executor unless said): sample, select,
label, add and prune as harness operations; data commits with trailers and hashes; the labelling
budget; bad input refused before any job; verdict semantics with the trial."""

from __future__ import annotations

import json

import git
import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read

from mlipilot.data_actions import DataActions, DataRefusal
from mlipilot.data_actions.commits import frames_at, pending_data_commits, trial_parent
from mlipilot.errors import MLIPilotError
from mlipilot.integrity import data_file_hashes, integrity_problem, sha256_file
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run

DATA_TABLE = "\n[data]\nlabel_budget = {{ calls = %d, cpu_seconds = 600 }}\n"  # braces: TEMPLATE is formatted


def make_run(tmp_path, bench, monkeypatch, calls: int = 30, executor: str = "debug", extra: str = ""):
    import mlipilot.rundir as rundir

    monkeypatch.setattr(rundir, "TEMPLATE", rundir.TEMPLATE + DATA_TABLE % calls + extra)
    root = init_run(str(bench), tmp_path / "run", executor=executor, progress=lambda s: None)
    return load_run_config(root)


@pytest.fixture
def run(tmp_path, fast_benchmark, monkeypatch):
    return make_run(tmp_path, fast_benchmark, monkeypatch)


def trailers(repo: git.Repo, rev: str) -> dict:
    out = repo.git.log("-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


def one_round(acts: DataActions, n_frames: int = 8, n: int = 4):
    pool = acts.sample("md1000", driver="reference", method="langevin", temperatures=[2500], n_frames=n_frames,
                       steps=40, structures=1)
    sel = acts.select(pool, "random", n=n, seed=1)
    lab = acts.label(sel)
    return pool, sel, lab, acts.add(lab)


def test_data_commit_with_trailers_and_hashes(run):
    acts = DataActions(run, progress=lambda s: None)
    pool, sel, lab, out = one_round(acts)
    assert pool.n == 8 and all(s["config_type"] == "md1000" for s in pool.frames_stats)
    assert lab.n == 4 and lab.calls == 4 and not lab.failed
    repo = git.Repo(run.root)
    assert out.commit == repo.head.commit.hexsha and out.file == "data/added/1.xyz"
    tr = trailers(repo, "HEAD")
    assert tr["MLIPilot-Data-Action"] == "add" and tr["MLIPilot-Data-Frames-Added"] == "4"
    assert tr["MLIPilot-Data-Strategy"] == "random" and tr["MLIPilot-Data-Budget-Left"] == "26"
    assert tr["MLIPilot-Data-Labels-Spent"] == "4" and "langevin reference" in tr["MLIPilot-Data-Source"]
    # only data/added changed in the data commit; its hash is recorded, so the workspace is intact
    assert repo.git.show("--name-only", "--format=", "HEAD").split() == ["data/added/1.xyz"]
    assert data_file_hashes(run.store) == {"data/added/1.xyz": sha256_file(run.root / "data/added/1.xyz")}
    assert integrity_problem(run.root, run.store, run.editable) is None
    frames = read(run.root / "data/added/1.xyz", index=":")
    f0 = frames[0]
    assert f0.info["config_type"] == "md1000" and f0.info["selection_strategy"] == "random"
    assert f0.info["source_action"] == f"pool{pool.id}/sel{sel.id}/lab{lab.id}"
    ref = f0.copy()
    ref.calc = EMT()
    assert np.allclose(f0.arrays["REF_forces"], ref.get_forces()) and np.isclose(f0.info["REF_energy"],
                                                                                  ref.get_potential_energy())
    # ledger: one event row per action, chain intact
    ledger = Ledger(run.store / "ledger.jsonl")
    assert ledger.verify() is None
    assert [r["action"] for r in ledger.rows()] == ["sample", "select", "label", "add"]
    assert pending_data_commits(run.root) == [out.commit]
    assert trial_parent(run.root) == repo.commit(out.commit).parents[0].hexsha
    assert frames_at(run.root, "HEAD")["data/added/1.xyz"] == 4
    # an agent writing into data/added/ itself is caught by the protected hashes
    with open(run.root / "data/added/1.xyz", "a") as f:
        f.write(" ")
    assert "data/added/1.xyz" in integrity_problem(run.root, run.store, run.editable)
    with pytest.raises(DataRefusal, match="restore it"):
        acts.prune("addition:1")


def test_budget_refusal(tmp_path, fast_benchmark, monkeypatch):
    run = make_run(tmp_path, fast_benchmark, monkeypatch, calls=6)
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("rattle*", driver="reference", method="rattle", n_frames=12)
    first = acts.label(acts.select(pool, "random", n=4))
    assert first.calls == 4 and first.budget_left == 2
    again = acts.label(acts.select(pool, "random", n=4))  # same frames: cached and charged once, free
    assert again.calls == 0 and again.cached == 4
    with pytest.raises(DataRefusal, match=r"needs \d+ reference calls but 2 are left.*select at most 2"):
        acts.label(acts.select(pool, "random", n=8, seed=3))
    acts.label(acts.select(pool, "random", n=6, seed=0))  # the 4 charged + 2 new
    assert acts.budget().calls_left == 0
    with pytest.raises(DataRefusal, match="labelling budget spent"):
        acts.label(acts.select(pool, "random", n=1, seed=5))


def test_bad_input_is_one_line_before_any_job(run):
    acts = DataActions(run, progress=lambda s: None)
    cases = [
        (lambda: acts.sample("nosuch*", driver="reference", method="rattle", n_frames=4), "matches no training frame"),
        (lambda: acts.sample("md*", driver="reference", method="langevin", temperatures=[9000], n_frames=4),
         "out of range"),
        (lambda: acts.sample("md*", driver="reference", method="langevin", n_frames=4), "needs temperatures"),
        (lambda: acts.sample("md*", driver="reference", method="teleport", n_frames=4), "unknown method"),
        (lambda: acts.sample("md*", driver="incumbent", method="rattle", n_frames=4), "no accepted model yet"),
    ]
    for call, match in cases:
        with pytest.raises(DataRefusal, match=match) as e:
            call()
        assert "\n" not in str(e.value)
    assert not (run.store / "data" / "jobs").exists() or not any((run.store / "data" / "jobs").iterdir())
    pool = acts.sample("rattle*", driver="reference", method="rattle", n_frames=3)
    with pytest.raises(DataRefusal, match="unknown strategy"):
        acts.select(pool, "loudest", n=1)
    with pytest.raises(DataRefusal, match="larger than pool"):
        acts.select(pool, "random", n=5)
    with pytest.raises(DataRefusal, match="committee needs at least 2 models"):
        acts.select(pool, "committee", n=1)
    with pytest.raises(DataRefusal, match="prune rule"):
        acts.prune("everything")


def test_budget_of_zero_is_a_config_error(tmp_path, fast_benchmark, monkeypatch):
    with pytest.raises(MLIPilotError, match=r"data.label_budget.calls.*must be > 0"):
        make_run(tmp_path, fast_benchmark, monkeypatch, calls=0)


def test_prune_acts_only_on_added_frames(run):
    acts = DataActions(run, progress=lambda s: None)
    one_round(acts)
    shipped = (run.root / "data/train.xyz").read_bytes()
    forces = [float(np.linalg.norm(a.arrays["REF_forces"], axis=1).max()) for a in read(run.root / "data/added/1.xyz", ":")]
    cut = sorted(forces)[1]
    out = acts.prune(f"force_above:{cut}")
    assert out.frames_removed == sum(f > cut for f in forces) == 2 and out.commit
    assert len(read(run.root / "data/added/1.xyz", ":")) == 2
    assert trailers(git.Repo(run.root), "HEAD")["MLIPilot-Data-Frames-Removed"] == "2"
    out = acts.prune("addition:1")
    assert out.frames_removed == 2 and not (run.root / "data/added/1.xyz").exists()
    assert (run.root / "data/train.xyz").read_bytes() == shipped
    assert integrity_problem(run.root, run.store, run.editable) is None
    with pytest.raises(DataRefusal, match="nothing to prune"):
        acts.prune("closest_below:5")  # no added frame is left
    assert "training set:" in acts.state_text() and "prune" in acts.state_text()


def test_killed_labelling_job_resumes_without_paying_twice(run):
    from mlipilot.data_actions import labelling

    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("rattle*", driver="reference", method="rattle", n_frames=6)
    sel = acts.select(pool, "random", n=6)
    frames = [acts.pool_frames(pool)[i] for i in sel.indices]
    cache = run.store / "data" / "label_cache" / labelling.reference_tag("emt")
    calls = []
    real = labelling.compute

    def dies_on_the_fourth(atoms, reference, params=None):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the job killed mid-way: what it computed is in the cache
        calls.append(1)
        return real(atoms, reference, params)

    labelling.compute = dies_on_the_fourth
    try:
        with pytest.raises(KeyboardInterrupt):
            labelling.label_frames(frames, "emt", {}, cache, 100, 600)
    finally:
        labelling.compute = real
    assert len(list(cache.glob("*.json"))) == 3
    lab = acts.label(sel)  # resumed: 3 from the cache, 3 computed; all 6 charged once
    assert lab.n == 6 and lab.cached == 3 and lab.calls == 6
    assert acts.budget().calls_spent == 6
    assert acts.label(sel).calls == 0 and acts.budget().calls_spent == 6


def test_committee_selection_with_two_tiny_real_models(run, good_model, untrained_model):
    from mlipilot_testkit import exported

    import shutil

    trial_dir = run.store / "trials" / "0001"
    shutil.copytree(exported(good_model), trial_dir / "model")
    shutil.copytree(exported(untrained_model), trial_dir / "seed-2" / "model")
    ledger = Ledger(run.store / "ledger.jsonl")
    ledger.append({"trial": 1, "status": "finished", "verdict": "accepted", "trial_dir": str(trial_dir),
                   "commit": git.Repo(run.root).head.commit.hexsha, "metrics": {}})  # an incumbent with a replicate
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("md300", driver="incumbent", method="langevin", temperatures=[1500], n_frames=4, steps=8,
                       structures=1)
    assert pool.n == 4 and pool.driver == "incumbent"
    sel = acts.select(pool, "committee", n=2)
    assert sel.params["models"] == 2 and len(sel.indices) == 2
    assert sel.scores == sorted(sel.scores, reverse=True) and sel.scores[-1] > 0
    window = acts.select(pool, "committee", n=2, trust=[0.0, min(sel.scores)])  # DP-GEN: lo <= eps < hi
    assert all(s < min(sel.scores) for s in window.scores)
    assert window.params["failed"] >= 2


def test_fps_and_max_error(run, good_model):
    from mlipilot_testkit import exported

    import shutil

    trial_dir = run.store / "trials" / "0001"
    shutil.copytree(exported(good_model), trial_dir / "model")
    Ledger(run.store / "ledger.jsonl").append({"trial": 1, "status": "finished", "verdict": "accepted",
                                               "trial_dir": str(trial_dir), "metrics": {}})
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("rattle*", driver="reference", method="compression", n_frames=5, amplitude=0.1)
    fps = acts.select(pool, "fps", n=3)
    assert len(set(fps.indices)) == 3 and fps.scores[0] >= fps.scores[-1]
    worst = acts.select(pool, "max_error", n=2)
    assert worst.labels_spent == 5 and worst.scores == sorted(worst.scores, reverse=True)
    lab = acts.label(worst)  # the pool was labelled by max_error: nothing more to pay
    assert lab.calls == 0 and lab.n == 2


@pytest.mark.slow  # two trials, each scoring MD
def test_rejected_trial_reverts_its_data(run, good_model, untrained_model):
    from mlipilot_testkit import copy_trainer

    from mlipilot.trial import TrialRunner

    t = TrialRunner(run, progress=print)
    (run.root / "train" / "train.py").write_text(copy_trainer(good_model))
    r1 = t.run("baseline: the trained model")
    assert r1["verdict"] == "accepted"
    acts = DataActions(run, progress=lambda s: None)
    out = one_round(acts)[-1]
    (run.root / "train" / "train.py").write_text(copy_trainer(untrained_model))
    r2 = t.run("random weights with more data")
    assert r2["verdict"] == "rejected"
    repo = git.Repo(run.root)
    assert r2["parent_commit"] == r1["commit"]  # judged against the state before its data
    assert repo.head.commit.hexsha == r1["commit"] and not (run.root / "data/added").exists()
    assert repo.is_ancestor(out.commit, "refs/mlipilot/rejected/2")  # the rejected ref keeps code and data
    assert data_file_hashes(run.store) == {} and integrity_problem(run.root, run.store, run.editable) is None
    assert json.loads((run.store / "data_files.json").read_text()) == {}
