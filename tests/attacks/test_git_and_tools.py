"""Routes around the audit and the tools: files git would not commit, links into the store, code planted
in the run's .git, and tool arguments built to crash the harness."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from mlipilot_testkit import copy_trainer

from fake_llm_server import FakeLLMServer
from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents.llm import LLMAgent
from mlipilot.errors import MLIPilotError
from mlipilot.ledger import Ledger
from mlipilot.trial import TrialRunner
from mlipilot.workspace_tools import ToolError


def test_gitignored_shadow_module_is_refused_by_tools_and_by_the_trial(arena):
    with pytest.raises(ToolError, match="git control files are refused"):
        arena.write("train/.gitignore", "*\n")
    (arena.cfg.root / "train" / ".gitignore").write_text("*\n")  # as a run without a sandbox could
    (arena.cfg.root / "train" / "yaml.py").write_text("raise SystemExit('shadowed')\n")
    with pytest.raises(MLIPilotError, match="train/.gitignore: git control files are refused"):
        TrialRunner(arena.cfg).run("one-line config change")
    assert Ledger(arena.store / "ledger.jsonl").trials() == []


@pytest.mark.slow  # a whole trial (sandboxed job + scoring MD)
def test_an_ignored_file_never_runs(arena, honest):
    """What trains is the commit: a file git does not track is not there."""
    (arena.cfg.root / "train" / "__pycache__").mkdir(exist_ok=True)
    (arena.cfg.root / "train" / "__pycache__" / "yaml.py").write_text("raise SystemExit('shadowed')\n")
    r = arena.attack("import sys; sys.path.insert(0, 'train/__pycache__'); import yaml")
    assert r["verdict"] == honest["verdict"] and r["metrics"]["energy_rmse"] == honest["metrics"]["energy_rmse"]


def test_hard_link_into_the_store_is_refused(arena):
    link = arena.cfg.root / "train" / "scorecard_copy.yaml"
    os.link(arena.store / "scorecard.yaml", link)
    for call in (lambda: arena.tools.read_file("train/scorecard_copy.yaml"),
                 lambda: arena.tools.edit_file("train/scorecard_copy.yaml", "constraints", "x"),
                 lambda: arena.tools.write_file("train/scorecard_copy.yaml", "constraints: []")):
        with pytest.raises(ToolError, match="hard link"):
            call()
    with pytest.raises(MLIPilotError, match="scorecard_copy.yaml: a hard link"):
        TrialRunner(arena.cfg).run("bring the scorecard along")


@pytest.mark.slow  # two whole trials
def test_code_planted_in_git_never_runs_in_the_harness(arena, honest):
    marker = Path("/var/tmp") / f"mlipilot-attack-{uuid.uuid4().hex}"
    hooks = arena.cfg.root / ".git" / "hooks"
    for hook in ("pre-commit", "post-commit", "post-checkout", "post-rewrite", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)
    with open(arena.cfg.root / ".git" / "config", "a") as f:
        f.write(f"[core]\n\tfsmonitor = touch {marker}\n")
    arena.attack("")  # an accepted trial: commit, amend
    arena.write("train/train.py", copy_trainer(arena.good_model) + "raise SystemExit(1)\n")
    TrialRunner(arena.cfg).run("a failing trial: reset and clean")
    assert not marker.exists()


BAD_CALLS = [
    {"tool": "read_file", "args": {"path": "train"}},
    {"tool": "read_file", "args": {"path": "train/config.yaml\x00.txt"}},
    {"tool": "read_file", "args": {"path": "train/config.yaml", "start_line": "first"}},
    {"tool": "read_file", "args": {"path": "train/config.yaml", "end_line": [1]}},
    {"tool": "write_file", "args": {"path": "train/x.py", "content": "\ud800"}},
    {"tool": "write_file", "args": {"path": "train/\udcff.py", "content": "x"}},
    {"tool": "write_file", "args": {"path": "train/big.txt", "content": "x" * (2 << 20)}},
    {"tool": "write_file", "args": {"path": "train/config.yaml/child", "content": "x"}},
    {"tool": "edit_file", "args": {"path": "train/config.yaml", "old_text": 1, "new_text": 2}},
    {"tool": "show_trial", "args": {"trial": 10**30}},
    {"tool": "list_files", "args": {"unexpected": True}},
]


def test_tool_calls_built_to_crash_are_tool_errors(arena):
    """Called directly (the fast lane's share of the next test, which also drives them through an agent)."""
    for call in BAD_CALLS:
        with pytest.raises(ToolError):
            arena.tools.call(call["tool"], call["args"])


@pytest.mark.slow  # run_agent trains the shipped baseline for real
def test_tool_calls_built_to_crash_come_back_as_tool_errors(arena):
    cfg = arena.cfg
    for call in BAD_CALLS:
        with pytest.raises(ToolError):
            arena.tools.call(call["tool"], call["args"])
    with FakeLLMServer(BAD_CALLS + [{"tool": "finish", "args": {"summary": "done"}}]) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01)
        status = run_agent(cfg, agent, Budget(iterations=2, llm_calls_per_iteration=len(BAD_CALLS) + 2))
    assert status == "finished"
    rows = Ledger(cfg.store / "ledger.jsonl").rows()
    iteration = [r for r in rows if r.get("event") == "iteration"][-1]
    assert iteration["tool_errors"] == len(BAD_CALLS)
    assert rows[-1]["event"] == "run_end" and rows[-1]["exit_status"] == "finished"
