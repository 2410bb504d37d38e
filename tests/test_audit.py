"""Audit from git alone: `mlipilot log` / `show` on a clone with no ledger."""

from __future__ import annotations

import json
import subprocess

import git
import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner

pytestmark = pytest.mark.slow  # the shared run scores three trials (job + scoring MD)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fast_benchmark, good_model, untrained_model):
    base = tmp_path_factory.mktemp("audit")
    root = init_run(str(fast_benchmark), base / "run", executor="debug", progress=lambda s: None)
    cfg = load_run_config(root)
    t = TrialRunner(cfg, progress=lambda s: None)
    for hyp, src in [("baseline", untrained_model), ("trained model", good_model), ("back to random", untrained_model)]:
        (root / "train" / "train.py").write_text(copy_trainer(str(src)))
        t.run(hyp, agent="test")
    return cfg


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    p = subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p


def test_log_on_a_clone_without_ledger(finished_run, tmp_path):
    clone = tmp_path / "clone"
    git.Repo.clone_from(finished_run.root, clone, branch=finished_run.branch)
    assert not (clone / "ledger.jsonl").exists() and not list(clone.rglob("ledger.jsonl"))
    entries = json.loads(cli("log", str(clone), "--json").stdout)
    assert [(e["trial"], e["verdict"]) for e in entries] == [(1, "accepted"), (2, "accepted")]
    assert entries[1]["parent_trial"] == 1 and entries[1]["delta"]["energy_rmse"] < 0
    assert entries[1]["hypothesis"] == "trained model" and entries[1]["feasible"]
    text = cli("log", str(clone)).stdout
    assert "trained model" in text and "back to random" not in text and "git log --format" in text

    # rejected trials travel only when their refs are fetched
    git.Repo(clone).git.fetch("origin", "refs/mlipilot/*:refs/mlipilot/*")
    entries = json.loads(cli("log", str(clone), "--all", "--json").stdout)
    assert [(e["trial"], e["verdict"]) for e in entries] == [(1, "accepted"), (2, "accepted"), (3, "rejected")]


def test_show_one_trial(finished_run):
    out = json.loads(cli("show", "3", "--run", str(finished_run.root), "--json").stdout)
    assert out["verdict"] == "rejected" and "train/train.py" in out["diff"]
    assert out["reason"].startswith("infeasible") and out["scorecard_json"].endswith("scorecard.json")
    text = cli("show", "2", "--run", str(finished_run.root)).stdout
    assert "trial 2: accepted" in text and "energy_rmse" in text


def test_plain_git_one_liner_gives_the_same_audit(finished_run):
    from mlipilot.audit import GIT_ONE_LINER

    cmd = GIT_ONE_LINER.replace("git log", f"git -C {finished_run.root} log {finished_run.branch}")
    lines = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split()[1:3] for line in lines[:2]] == [["2", "accepted"], ["1", "accepted"]]
