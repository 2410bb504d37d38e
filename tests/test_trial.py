"""Trial mechanics on a real run directory: git keep/revert, rejected refs, cleaning, failures,
integrity and crash recovery. train.py is edited the way an agent could edit it: to copy a
known model, crash, hang or write where it must not."""

from __future__ import annotations

import dataclasses
import json

import git
import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.errors import MLIPilotError
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner



@pytest.fixture
def run(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    return load_run_config(root)


def set_train(cfg, source: str) -> None:
    (cfg.root / "train" / "train.py").write_text(source)


def trailers(repo: git.Repo, rev: str) -> dict:
    out = repo.git.log("-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


@pytest.mark.slow  # three trials, each scoring MD
def test_accept_reject_and_git_history(run, good_model, untrained_model):
    t = TrialRunner(run, progress=print)
    set_train(run, copy_trainer(untrained_model))
    r1 = t.run("baseline: untrained model")
    assert r1["verdict"] == "accepted" and not r1["feasible"] and r1["reason"].startswith("baseline")

    set_train(run, copy_trainer(good_model))  # seed 1: E 17.5 of 30, F 61 of 100 (seeds 1-3: E 11.8-17.5, F 59-64)
    r2 = t.run("use the trained model")
    assert r2["verdict"] == "accepted" and r2["feasible"], r2["reason"]

    set_train(run, copy_trainer(untrained_model))
    (run.root / "train" / "scratch.txt").write_text("left behind by an edit")
    r3 = t.run("go back to random weights")
    assert r3["verdict"] == "rejected"

    repo = git.Repo(run.root)
    # the run branch holds only accepted commits, each with its trailers
    subjects = repo.git.log(run.branch, "--format=%s").splitlines()
    assert subjects == ["use the trained model", "baseline: untrained model",
                        "MLIPilot: initialise run from benchmark cu_fast"]
    tr = trailers(repo, run.branch)
    assert tr["MLIPilot-Trial"] == "2" and tr["MLIPilot-Verdict"] == "accepted"
    assert tr["MLIPilot-Feasible"] == "true" and float(tr["MLIPilot-Energy-Rmse"]) > 0
    # the rejected trial is kept under its ref, and the workspace is back to trial 2's files
    rejected = repo.commit("refs/mlipilot/rejected/3")
    assert trailers(repo, rejected.hexsha)["MLIPilot-Verdict"] == "rejected"
    assert rejected.hexsha == r3["commit"] and r3["rejected_ref"] == "refs/mlipilot/rejected/3"
    assert (run.root / "train" / "train.py").read_text() == copy_trainer(good_model)
    assert not (run.root / "train" / "scratch.txt").exists()
    assert not repo.is_dirty(untracked_files=True)
    assert repo.head.commit.hexsha == r2["commit"]

    rows = Ledger(run.store / "ledger.jsonl").trials()
    assert [r["verdict"] for r in rows] == ["accepted", "accepted", "rejected"]
    for key in ("trial", "parent_commit", "commit", "diff_stat", "hypothesis", "agent", "model", "tokens_in",
                "cost", "job_ids", "executor", "host", "wall", "metrics", "violations", "composite", "verdict",
                "reason", "hashes"):
        assert key in rows[1], key
    assert set(rows[1]["hashes"]) >= {"scorecard", "holdout", "harness"}
    assert rows[1]["parent_commit"] == r1["commit"]
    assert (run.store / "trials" / "0002" / "scorecard.json").is_file()


def test_crash_is_a_failed_trial_with_log_tail(run):
    set_train(run, "import sys\nprint('about to fail: CUDA out of memory (pretend)')\nsys.exit(7)\n")
    r = TrialRunner(run, progress=print).run("a crashing edit")
    assert r["verdict"] == "failed"
    assert "exited with status 7" in r["reason"] and r["failure"] == "train_crash"
    assert "about to fail" in r["log_tail"]
    repo = git.Repo(run.root)
    assert "refs/mlipilot/rejected/1" in [ref.path for ref in repo.refs]
    assert "sys.exit(7)" not in (run.root / "train" / "train.py").read_text()


def test_timeout_is_a_failed_trial(run):
    set_train(run, "import time\ntime.sleep(60)\n")
    cfg = dataclasses.replace(run, train_timeout_min=0.05)
    r = TrialRunner(cfg, progress=print).run("a hanging edit")
    assert r["verdict"] == "failed" and "timed out" in r["reason"] and r["failure"] == "timeout"
    from mlipilot.results import run_rows

    row = run_rows(cfg.store, "human", 0, "run")[-1]
    assert row["job_timeout"] and row["job_failed"]  # read from the failure kind, not the reason's text


def test_dirty_protected_file_refuses_before_anything_runs(run):
    with open(run.root / "data" / "train.xyz", "a") as f:
        f.write("\n")
    with pytest.raises(MLIPilotError, match=r"protected file\(s\) changed or removed: data/train.xyz"):
        TrialRunner(run).run("sneaky")
    assert Ledger(run.store / "ledger.jsonl").trials() == []


def test_edit_outside_train_refuses(run):
    (run.root / "notes.py").write_text("x = 1\n")
    with pytest.raises(MLIPilotError, match="added outside the editable paths: notes.py"):
        TrialRunner(run).run("sneaky")


def test_job_writing_protected_files_fails_in_the_sandbox(run, good_model):
    src = copy_trainer(good_model) + \
        "open('data/valid.xyz', 'a').write('tampered')\nopen('data/extra.xyz', 'w').write('x')\n"
    set_train(run, src)
    r = TrialRunner(run, progress=print).run("train on the validation set too")
    assert r["verdict"] == "failed" and "exited with status 1" in r["reason"]
    assert "Read-only file system" in r["log_tail"]
    assert "tampered" not in (run.root / "data" / "valid.xyz").read_text()
    assert not (run.root / "data" / "extra.xyz").exists()


@pytest.mark.slow  # a whole trial with scoring MD
def test_interrupted_trial_is_recorded_failed_and_git_repaired(run, good_model):
    t = TrialRunner(run, progress=print)
    # simulate a launcher killed after committing and recording `submitted`
    set_train(run, copy_trainer(good_model))
    parent = t.repo.head()
    commit = t.repo.commit_paths(run.editable, "half-done\n\nMLIPilot-Trial: 1\n")
    t.ledger.append({"trial": 1, "status": "submitted", "commit": commit, "parent_commit": parent,
                     "hypothesis": "half-done"})
    assert t.recover_interrupted() == [1]
    set_train(run, copy_trainer(good_model))
    r = t.run("after the crash")
    rows = t.ledger.trials()
    assert rows[0]["verdict"] == "failed" and "launcher stopped" in rows[0]["reason"]
    assert r["trial"] == 2 and r["parent_commit"] == parent
    assert git.Repo(run.root).commit("refs/mlipilot/rejected/1").hexsha == commit
    rows = [json.loads(x) for x in (run.store / "ledger.jsonl").read_text().splitlines()]
    for n in (1, 2):  # each trial: `submitted` first (then job ids as they are known), `finished` last
        statuses = [r["status"] for r in rows if r["trial"] == n]
        assert statuses[0] == "submitted" and statuses[-1] == "finished" and statuses.count("finished") == 1
