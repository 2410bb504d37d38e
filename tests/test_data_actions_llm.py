"""An LLM agent uses the data tools through the real tool protocol: a scripted OpenAI-compatible
server driven through litellm samples, selects, labels and adds frames, then runs an experiment whose
only change is the data; the brief shows the data state; a refused call comes back as text."""

from __future__ import annotations

import json

import git
import pytest
from mlipilot_testkit import commit_trainer, copy_trainer

from fake_llm_server import FakeLLMServer
from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents.llm import LLMAgent
from mlipilot.context import build_brief
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import WorkspaceTools

pytestmark = pytest.mark.slow  # the harness's baseline and one more trial (job + scoring MD)


@pytest.fixture
def cfg(tmp_path, fast_benchmark, untrained_model, monkeypatch):
    import mlipilot.rundir as rundir

    monkeypatch.setattr(rundir, "TEMPLATE", rundir.TEMPLATE + "\n[data]\nlabel_budget = {{ calls = 10 }}\n")
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    commit_trainer(root, copy_trainer(str(untrained_model)))
    return load_run_config(root)


def test_llm_agent_grows_the_training_set_through_tools(cfg):
    script = [
        {"tool": "data_status", "args": {}},
        {"tool": "sample_data", "args": {"source": "../holdout.xyz", "method": "rattle", "n_frames": 4}},
        {"tool": "sample_data", "args": {"source": "rattle*", "driver": "reference", "method": "rattle",
                                         "n_frames": 6, "amplitude": 0.08}},
        {"tool": "select_data", "args": {"pool": 1, "strategy": "random", "n": 20}},
        {"tool": "select_data", "args": {"pool": 1, "strategy": "random", "n": 3}},
        {"tool": "label_data", "args": {"selection": 1}},
        {"tool": "add_data", "args": {"labelled": 1}},
        {"tool": "run_experiment", "args": {"hypothesis": "three rattled frames teach short-range repulsion"}},
        {"tool": "finish", "args": {"summary": "done"}},
    ]
    with FakeLLMServer(script) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01)
        status = run_agent(cfg, agent, Budget(iterations=3), progress=print)
    assert status == "finished"
    offered = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert {"sample_data", "select_data", "label_data", "add_data", "prune_data", "data_status"} <= offered
    replies = [m["content"] for m in server.requests[7]["messages"] if m["role"] == "tool"]
    assert "training set:" in replies[0] and "labels spent 0/10" in replies[0]
    assert replies[1].startswith("Refused:") and "config_type glob" in replies[1]
    assert replies[2].startswith("pool 1: 6 frames")
    assert replies[3].startswith("Refused:") and "larger than pool 1" in replies[3]
    assert replies[4].startswith("selection 1: 3 of pool 1")
    assert "3 reference calls" in replies[5] and "left: 7 calls" in replies[5]
    assert replies[6].startswith("added 3 frames as data/added/1.xyz")
    ledger = Ledger(cfg.store / "ledger.jsonl")
    assert ledger.verify() is None
    actions = [r["action"] for r in ledger.rows() if r.get("event") == "data_action"]
    # the label job's calls are reserved in the ledger before it runs, then settled by its own row
    assert actions == ["sample", "select", "reserve", "label", "add"]
    trials = ledger.trials()
    assert len(trials) == 2  # the data-only change was an experiment (not refused as "nothing changed")
    repo = git.Repo(cfg.root)
    t2 = trials[1]
    assert t2["parent_commit"] == trials[0]["commit"]
    data_commit = repo.commit(t2["commit"]).parents[0]
    assert "MLIPilot-Data-Action: add" in data_commit.message
    if t2["verdict"] == "accepted":
        assert (cfg.root / "data/added/1.xyz").is_file()
    else:  # the same copied model scores the same: rejected, and its data went with it
        assert not (cfg.root / "data/added").exists() and repo.head.commit.hexsha == trials[0]["commit"]
    brief = build_brief(cfg, WorkspaceTools(cfg), 3, 3)
    assert "## Training data" in brief and "labels spent 3/10" in brief and "last data actions" in brief
    assert json.dumps(brief)  # plain text
