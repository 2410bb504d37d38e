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
from mlipilot.data_actions.brief import data_state
from mlipilot.data_commits import frames_at, pending_data_commits, trial_parent
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
    # the label job's calls are reserved before it and settled by its label row
    assert [r["action"] for r in ledger.rows()] == ["sample", "select", "reserve", "label", "add"]
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
    with pytest.raises(DataRefusal, match="quotas"):
        acts.select(pool, "random", n=2, quotas={"rattle*": -1})
    assert len(acts.select(pool, "random", n=3, quotas={"rattle*": 1}).indices) == 1  # per-config_type cap


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
    assert "training set:" in data_state(acts) and "prune" in data_state(acts)


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
    assert len(set(fps.indices)) == 3 and np.isfinite(fps.scores).all() and fps.scores[0] >= fps.scores[-1] > 0
    worst = acts.select(pool, "max_error", n=2)
    assert worst.labels_spent == 5 and worst.scores == sorted(worst.scores, reverse=True)
    lab = acts.label(worst)  # the pool was labelled by max_error: nothing more to pay
    assert lab.calls == 0 and lab.n == 2


@pytest.mark.slow  # two trials, each scoring MD
def test_rejected_trial_reverts_its_data(run, good_model, untrained_model, capsys):
    """Data and code move together: an accepted trial keeps the data it trained on, a rejected one
    takes its data commit with it (its ref keeps both); the audit shows which frames each trained on."""
    from mlipilot_testkit import copy_trainer

    from mlipilot.cli import main
    from mlipilot.trial import TrialRunner

    t = TrialRunner(run, progress=print)
    (run.root / "train" / "train.py").write_text(copy_trainer(untrained_model))
    r1 = t.run("baseline: random weights")
    acts = DataActions(run, progress=lambda s: None)
    kept = one_round(acts)[-1]
    (run.root / "train" / "train.py").write_text(copy_trainer(good_model))
    r2 = t.run("the trained model, with four hot frames")
    assert r2["verdict"] == "accepted" and r2["parent_commit"] == r1["commit"]
    repo = git.Repo(run.root)
    assert repo.commit(r2["commit"]).parents[0].hexsha == kept.commit and (run.root / "data/added/1.xyz").is_file()
    out = one_round(acts, n=2)[-1]
    assert out.file == "data/added/2.xyz"
    (run.root / "train" / "train.py").write_text(copy_trainer(untrained_model))
    r3 = t.run("random weights with more data")
    assert r3["verdict"] == "rejected"
    assert r3["parent_commit"] == r2["commit"]  # judged against the state before its data
    assert repo.head.commit.hexsha == r2["commit"] and not (run.root / "data/added/2.xyz").exists()
    assert repo.is_ancestor(out.commit, "refs/mlipilot/rejected/3")  # the rejected ref keeps code and data
    assert set(data_file_hashes(run.store)) == {"data/added/1.xyz"}
    assert integrity_problem(run.root, run.store, run.editable) is None
    # the audit: `mlipilot log` shows the data commits each trial carried, `show` what it trained on
    capsys.readouterr()
    assert main(["log", str(run.root), "--all"]) == 0
    log = capsys.readouterr().out
    assert f"data add: +4 -0 frames data/added/1.xyz (commit {kept.commit[:8]})" in log
    assert f"data add: +2 -0 frames data/added/2.xyz (commit {out.commit[:8]})" in log
    entries = {e["trial"]: e for e in __import__("mlipilot.audit").audit.audit(run.root, include_rejected=True)}
    assert entries[2]["parent_trial"] == 1 and entries[2]["delta"]  # judged against trial 1, not the data commit
    n_train = len(read(run.root / "data/train.xyz", ":"))
    assert main(["show", "3", "--run", str(run.root)]) == 0
    shown = capsys.readouterr().out
    assert (f"trained on: data/train.xyz ({n_train} frames), data/added/1.xyz (4 frames), "
            "data/added/2.xyz (2 frames)") in shown
    assert "REF_forces" not in shown  # frames are counted, not printed as a diff
    assert main(["show", "1", "--run", str(run.root)]) == 0
    assert f"trained on: data/train.xyz ({n_train} frames)\n" in capsys.readouterr().out


def test_pyscf_labelling_of_a_selected_molecular_frame(tmp_path, fast_benchmark, monkeypatch):
    """B3LYP/6-31G(d) through the existing labeller, on H2O from the shipped QM7 pool: the label the
    harness computes matches the pool's own (same method), is charged once and cached."""
    from pathlib import Path

    from ase.io import write

    from mlipilot.data_actions.records import Pool, Selection

    pool_file = Path(__file__).resolve().parents[1] / "benchmarks" / "qm7_b3lyp" / "pool.extxyz.gz"
    water = next(a for a in read(pool_file, index=":") if a.get_chemical_formula() == "H2O"
                 and a.info["config_type"] == "eq")
    run = make_run(tmp_path, fast_benchmark, monkeypatch, calls=3, extra='reference = "pyscf"\n')
    acts = DataActions(run, progress=lambda s: None)
    frame = water.copy()
    frame.calc = None
    frame.info = {"config_type": "water"}
    for k in [k for k in frame.arrays if k.startswith("REF_")]:
        del frame.arrays[k]
    pool = Pool(1, "water", "reference", "rattle", {}, 1)  # as if sampled: the molecular frame selected
    write(acts._folder("pools") / "0001.xyz", [frame], format="extxyz")
    acts._save("pools", pool)
    sel = Selection(1, 1, "random", [0], [0.0])
    acts._save("selections", sel)
    lab = acts.label(sel)
    assert lab.n == 1 and lab.calls == 1 and not lab.failed and lab.budget_left == 2
    got = read(run.store / "data" / "labelled" / "0001.xyz", index="0")
    assert abs(got.info["REF_energy"] - water.info["REF_energy"]) < 1e-4  # eV, the shipped label
    assert np.allclose(got.arrays["REF_forces"], water.arrays["REF_forces"], atol=1e-3)
    assert acts.label(sel).calls == 0 and acts.budget().calls_spent == 1


def test_actions_run_as_local_submitit_jobs(tmp_path, fast_benchmark, monkeypatch):
    """The local executor: a separate process per action (pickled job functions, the scoring prologue)."""
    run = make_run(tmp_path, fast_benchmark, monkeypatch, executor="local")
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("vacancy*", driver="reference", method="vacancy", n_frames=3)
    starts = read(run.store / "data/pools/0001.starts.xyz", index=":")
    assert pool.n == 3 and {s["n_atoms"] for s in pool.frames_stats} <= {len(a) - 1 for a in starts}
    assert pool.peak_rss_mb > 0 and list((run.store / "data/jobs/sample-0001/submitit").glob("*_result.pkl"))
    lab = acts.label(acts.select(pool, "random", n=2))
    assert lab.n == 2 and lab.calls == 2


def test_md_methods_and_the_scorecards_guards_stop_early(run, untrained_model):
    """A random-weight incumbent collapses under MD: the run stops on the scorecard's guard and says
    where; ramp and NPT sampling with the reference keep frames along the way."""
    from mlipilot_testkit import exported

    import shutil

    trial_dir = run.store / "trials" / "0001"
    shutil.copytree(exported(untrained_model), trial_dir / "model")
    Ledger(run.store / "ledger.jsonl").append({"trial": 1, "status": "finished", "verdict": "accepted",
                                               "trial_dir": str(trial_dir), "metrics": {}})
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("md300", driver="incumbent", method="langevin", temperatures=[1000], n_frames=10, steps=150,
                       structures=1)
    assert pool.early_stops and pool.early_stops[0]["structure"].startswith("md300#")
    assert pool.early_stops[0]["temperature"] == 1000.0
    assert any(w in pool.early_stops[0]["reason"] for w in ("apart", "runaway", "non-finite"))
    assert pool.n < 10  # frames before the stop are kept, none after
    ramp = acts.sample("md300", driver="reference", method="ramp", temperatures=[[300, 2500]], n_frames=4,
                       steps=40, structures=1)
    assert ramp.n == 4 and ramp.conditions["temperatures"] == [[300.0, 2500.0]]
    npt = acts.sample("bulk32*", driver="reference", method="npt", temperatures=[1200], n_frames=2, steps=20,
                      structures=1)
    assert npt.n == 2 and all(s["temperature"] > 0 for s in npt.frames_stats)
    assert "early stops: md300#0 @ 1000.0 K" in data_state(acts)


def test_data_no_trial_followed_is_discarded(run):
    """Like edits without an experiment: the agent loop drops data commits no trial followed."""
    from mlipilot.data_commits import discard_pending

    head = git.Repo(run.root).head.commit.hexsha
    acts = DataActions(run, progress=lambda s: None)
    out = one_round(acts, n_frames=4, n=2)[-1]
    assert discard_pending(run.root, run.store) == [out.commit]
    assert git.Repo(run.root).head.commit.hexsha == head and not (run.root / "data/added/1.xyz").exists()
    assert data_file_hashes(run.store) == {} and integrity_problem(run.root, run.store, run.editable) is None
    assert discard_pending(run.root, run.store) == []
    assert acts.add(acts.labelled(1)).frames_added == 2  # the labels are kept (paid for): added again for free


@pytest.mark.slow  # one real mace-torch training (1 epoch, small data)
def test_shipped_train_py_trains_on_the_union(tmp_path, small_data):
    """The workspace's train.py reads data/train.xyz and every data/added/<n>.xyz."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from ase.io import write

    root = Path(__file__).resolve().parents[1]
    work = tmp_path / "ws"
    shutil.copytree(root / "workspace_template" / "cu_emt" / "train", work / "train")
    (work / "data" / "added").mkdir(parents=True)
    for split in ("train", "valid"):
        shutil.copy(small_data[split], work / "data" / f"{split}.xyz")
    added = read(small_data["train"], index=":3")
    for a in added:
        a.info["source_action"], a.info["selection_score"] = "pool1/sel1/lab1", 0.5
    write(work / "data" / "added" / "1.xyz", added[:2], format="extxyz")
    write(work / "data" / "added" / "2.xyz", added[2:], format="extxyz")
    (work / "data" / "added" / "valid").mkdir()
    write(work / "data" / "added" / "valid" / "3.xyz", added[:1], format="extxyz")  # split 'valid'
    cfg = work / "train" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_num_epochs:", "max_num_epochs: 1  #"))
    subprocess.run([sys.executable, "train/train.py", "--out-dir", str(work / "out"), "--model-out",
                    str(work / "m.model")], cwd=work, check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    union = read(work / "out" / "train_union.xyz", index=":")
    assert len(union) == len(read(small_data["train"], index=":")) + 3 and (work / "m.model").is_file()
    assert union[-1].info["source_action"] == "pool1/sel1/lab1"
    valid = read(work / "out" / "valid_union.xyz", index=":")  # the added validation frame, never trained on
    assert len(valid) == len(read(small_data["valid"], index=":")) + 1


def test_parallel_run_with_data_is_refused_in_one_line(run):
    """K candidates would share the pending data commits a reject must revert: refused before any job,
    through the console script."""
    import subprocess

    p = subprocess.run(["mlipilot", "run", "--run", str(run.root), "--agent", "expert", "--parallel", "2",
                        "--iterations", "3"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "mlipilot.toml" in lines[0] and "--parallel 1" in lines[0], p.stderr
    assert not Ledger(run.store / "ledger.jsonl").trials()  # nothing ran, not even the baseline


def test_add_to_the_validation_split(run):
    """split 'valid' writes data/added/valid/<n>.xyz (one numbering with the training additions), commits
    it with its split, keeps it out of the training frames and out of the trial's train_frames, and
    stays sealed; a split that is neither is refused in one line."""
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("md1000", driver="reference", method="langevin", temperatures=[2500], n_frames=8,
                       steps=40, structures=1)
    lab_train = acts.label(acts.select(pool, "random", n=3, seed=1))
    lab_valid = acts.label(acts.select(pool, "random", n=2, seed=2))
    with pytest.raises(DataRefusal, match="split 'test'.*'train'.*'valid'"):
        acts.add(lab_valid, split="test")
    n_train = len(acts.training_frames())
    acts.add(lab_train)
    out = acts.add(lab_valid, split="valid")
    assert out.file == "data/added/valid/2.xyz" and out.frames_added == 2
    repo = git.Repo(run.root)
    assert trailers(repo, "HEAD")["MLIPilot-Data-Split"] == "valid"
    assert len(acts.training_frames()) == n_train + 3  # the validation frames are not trained on
    assert list(frames_at(run.root, "HEAD")) == ["data/train.xyz", "data/added/1.xyz"]
    assert frames_at(run.root, "HEAD", "valid") == {"data/added/valid/2.xyz": 2}
    assert "data/added/valid/2.xyz" in data_file_hashes(run.store)
    assert integrity_problem(run.root, run.store, run.editable) is None
    assert "validation frames added: 2" in data_state(acts)
    acts.prune("addition:2")  # one numbering: names the validation file
    assert not (run.root / "data/added/valid/2.xyz").exists() and (run.root / "data/added/1.xyz").exists()
