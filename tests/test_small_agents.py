"""What makes a small agent useful (issue 15), through real HTTP to a scripted server: the harness
measures the baseline itself, the brief says what fails in physical units and what was tried,
repeats and no-ops are refused before any job runs, set_options converts or refuses values, and
the brief's static text is byte-identical across iterations (a server's prompt cache reuses it)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from mlipilot_testkit import ROOT, commit_trainer, copy_trainer, user_benchmark

from fake_llm_server import FakeLLMServer
from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents.base import Agent, IterationResult
from mlipilot.agents.config_edits import set_config
from mlipilot.agents.llm import LLMAgent
from mlipilot.errors import MLIPilotError
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import Refused, ToolError, WorkspaceTools


@pytest.fixture
def cfg(tmp_path, fast_benchmark, untrained_model):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    commit_trainer(root, copy_trainer(str(untrained_model)))  # every trial "trains" the same untrained model
    return load_run_config(root)


def llm(server: FakeLLMServer) -> LLMAgent:
    return LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01)


def call(tool: str, **args) -> dict:
    return {"tool": tool, "args": args}


def first_user_message(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


@pytest.mark.slow  # run_agent: the harness baseline trial (job + scoring MD)
def test_harness_measures_the_baseline_and_the_brief_says_what_fails_in_units(cfg):
    with FakeLLMServer([call("finish", summary="done")]) as server:
        status = run_agent(cfg, llm(server), Budget(iterations=3), progress=print)
    assert status == "finished"
    trials = Ledger(cfg.store / "ledger.jsonl").trials()
    assert len(trials) == 1 and trials[0]["agent"] == "harness" and trials[0]["diff_stat"] == "no changes"
    brief = first_user_message(server.requests[0])
    assert "# Iteration 1 of 3" in brief
    fails = brief.split("## What fails")[1].split("##")[0]
    # value, unit, bound and factor, and the options knobs.yaml documents as acting on the metric
    line = next(x for x in fails.splitlines() if x.startswith("- energy_rmse "))
    assert "meV/atom > 30" in line and "×)" in line
    assert "options documented as acting on it: energy_weight" in line and "E0s" in line
    assert "## Configurations tried" in brief and "energy_weight" in brief.split("## Configurations tried")[1]


@pytest.mark.slow  # three trials (job + scoring MD)
def test_repeats_and_no_ops_are_refused_before_any_job(cfg):
    script = [
        # iteration 1: a comment-only edit, an option already at that value, an experiment with no change
        call("edit_file", path="train/config.yaml", old_text="Edit freely.", new_text="Edit freely!"),
        call("set_options", updates={"lr": 0.01}),
        call("run_experiment", hypothesis="nothing changed"),
        call("set_options", updates={"lr": "0.02"}),
        call("run_experiment", hypothesis="a higher learning rate"),
        # iteration 2 (trial 2 was rejected and reverted): the same configuration again, then a new one
        call("set_options", updates={"lr": 0.02}),
        call("run_experiment", hypothesis="a higher learning rate, again"),
        call("set_options", updates={"lr": 0.005}),
        call("run_experiment", hypothesis="a lower learning rate"),
        call("finish", summary="done"),
    ]
    with FakeLLMServer(script) as server:
        assert run_agent(cfg, llm(server), Budget(iterations=3), progress=print) == "finished"
    trials = Ledger(cfg.store / "ledger.jsonl").trials()
    assert [t["knobs"]["lr"] for t in trials] == [0.01, 0.02, 0.005]  # no configuration trained twice
    assert trials[1]["refused"] == 3 and trials[1]["tool_errors"] == 0
    assert trials[2]["refused"] == 1 and trials[2]["tool_errors"] == 0
    replies = [m["content"] for r in server.requests for m in r["messages"] if m["role"] == "tool"]
    assert any("changes only comments, whitespace" in r for r in replies)
    assert any("every option is already at that value" in r for r in replies)
    assert any("nothing under train/ changed" in r for r in replies)
    assert any("already trained in trial 2" in r for r in replies)
    assert len(list((cfg.store / "trials").iterdir())) == 3  # three jobs, no more


class SameEditAgent(Agent):
    """A non-LLM agent that proposes the same change every time: the loop, not the agent, refuses."""
    name = "same-edit"

    def run_iteration(self, tools, brief, limits):
        set_config(tools, {"lr": 0.02})
        return IterationResult("experiment", "lr 0.02")


@pytest.mark.slow  # two trials (job + scoring MD)
def test_the_loop_refuses_a_repeat_from_any_agent(cfg):
    assert run_agent(cfg, SameEditAgent(), Budget(iterations=3), progress=print) == "budget_iterations"
    rows = Ledger(cfg.store / "ledger.jsonl").rows()
    trials = Ledger(cfg.store / "ledger.jsonl").trials()
    refused = [r for r in rows if r.get("event") == "iteration"]
    assert len(trials) == 2 and len(refused) == 2
    assert all(r["outcome"] == "refused" and "trial 2" in r["text"] and r["refused"] == 1 for r in refused)


def test_set_options_converts_types_and_refuses_bad_values(cfg):
    tools = WorkspaceTools(cfg)
    path = cfg.root / "train" / "config.yaml"
    out = tools.call("set_options", {"updates": {"energy_weight": "1000", "swa": "true", "max_num_epochs": 8.0,
                                                 "E0s": {"29": -3.7}, "start_swa": 5}})
    assert "energy_weight: 1.0 -> 1000.0" in out
    text = path.read_text()
    config = yaml.safe_load(text)
    assert config["energy_weight"] == 1000.0 and config["swa"] is True and config["max_num_epochs"] == 8
    assert config["E0s"] == "{29: -3.7}" and config["start_swa"] == 5
    assert text.startswith("# mace-torch training options")  # comments and order kept
    before = path.read_text()
    for updates, expected in [({"energy_weight": "abc"}, "expected float"),
                              ({"max_num_epochs": 2.5}, "expected an integer"),
                              ({"swa": 3}, "expected bool"),
                              ({"seed": 3}, "set by the harness"),
                              ({"energy_wieght": 1}, "did you mean 'energy_weight'"),
                              ({"max_num_epochs": 1000}, "outside the range [1, 60]"),
                              ({"default_dtype": "float16"}, "not one of ['float32', 'float64']"),
                              # declared in knobs.yaml, restricted by mace-torch's parser (what the 0.5B model
                              # wrote on cu_hot: a wasted training before this check)
                              ({"distance_transform": "nvt3500_108"}, "not one of ['None', 'Agnesi', 'Soft']")]:
        with pytest.raises(ToolError, match=expected.replace("[", r"\[").replace("(", r"\(")):
            tools.call("set_options", {"updates": updates})
        assert path.read_text() == before  # nothing is written when no key is valid
    # (a valid key beside a bad one is written, the bad one refused on its own line: tests/test_demo_agent.py)
    # forms small models produce: a flat object, the object as a JSON string
    assert "lr: 0.01 -> 0.02" in tools.call("set_options", {"lr": 0.02})
    assert "lr: 0.02 -> 0.005" in tools.call("set_options", {"updates": json.dumps({"lr": 0.005})})
    with pytest.raises(Refused):
        tools.call("set_options", {"updates": {"lr": 0.005}})


@pytest.mark.slow  # two trials (job + scoring MD)
def test_no_experiment_iterations_reach_the_next_brief_and_the_static_prefix_is_identical(cfg):
    script = [call("list_files"), call("read_file", path="train/config.yaml"),  # iteration 1: no experiment
              call("set_options", updates={"forces_weight": 10}),
              call("run_experiment", hypothesis="forces weight 10"),  # iteration 2
              call("finish", summary="done")]  # iteration 3
    with FakeLLMServer(script, cache_n=900) as server:
        run_agent(cfg, llm(server), Budget(iterations=3, llm_calls_per_iteration=2), progress=print)
    firsts = [server.requests[i] for i in (0, 2, 4)]  # the first call of each iteration
    briefs = [first_user_message(r) for r in firsts]
    assert "iteration 1: no experiment (stop): no experiment after 2 LLM calls" in briefs[1]
    static = [b.split("# Iteration")[0] for b in briefs]
    assert static[0] == static[1] == static[2] and len(static[0]) > 500
    for r in firsts:  # system prompt and tool schemas: byte-identical too
        assert r["messages"][0] == firsts[0]["messages"][0] and r["tools"] == firsts[0]["tools"]
    rows = Ledger(cfg.store / "ledger.jsonl").rows()
    it1 = next(r for r in rows if r.get("event") == "iteration")
    assert it1["cached_tokens"] == 2 * 900  # the server's prompt-cache hits are recorded per iteration


@pytest.mark.parametrize("how", ["init_run", pytest.param("console script", marks=pytest.mark.slow)])
def test_a_bad_knobs_yaml_fails_at_init_with_one_line(tmp_path, default_data, how):
    """In-process (init_run, what `mlipilot init` calls) and, marked slow (its imports cost seconds),
    through the console script."""
    bench = user_benchmark(tmp_path / "bench", default_data, "knobs_typo")
    (bench / "knobs.yaml").write_text("energy_weight:\n  range: [0, 1000]\n  acts_on: [energy_rmsee]\n")
    run = tmp_path / "run"
    if how == "init_run":
        with pytest.raises(MLIPilotError) as e:
            init_run(str(bench), run, sandbox="none", progress=lambda s: None)
        lines = [x for x in str(e.value).splitlines() if "knobs.yaml" in x]
    else:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        r = subprocess.run(["mlipilot", "init", str(bench), str(run), "--sandbox", "none"], capture_output=True,
                           text=True, env=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
        lines = [x for x in r.stderr.splitlines() if "knobs.yaml" in x]  # (library warnings aside)
    assert len(lines) == 1 and "energy_weight.acts_on" in lines[0] and "did you mean 'energy_rmse'" in lines[0]
    assert not run.exists()


@pytest.mark.slow  # `mlipilot run` trains the baseline for real
def test_edits_before_the_baseline_are_refused_with_the_fix(tmp_path):
    """Through the console script: `mlipilot run` on an edited fresh run names the fix; after it, the
    harness's baseline runs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = tmp_path / "run"
    subprocess.run(["mlipilot", "init", "cu_emt", str(run), "--size", "small", "--executor", "debug",
                    "--sandbox", "none"], check=True, capture_output=True, env=env)
    config = run / "train" / "config.yaml"
    config.write_text(config.read_text().replace("max_num_epochs: 6", "max_num_epochs: 2"))
    r = subprocess.run(["mlipilot", "run", "--agent", "expert", "--iterations", "0"], cwd=run, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2 and "train/config.yaml edited before the baseline" in r.stderr, r.stdout + r.stderr
    assert "git checkout -- train/" in r.stderr and not Ledger(tmp_path / "run.mlipilot-store" / "ledger.jsonl").trials()
    subprocess.run(["git", "checkout", "--", "train/"], cwd=run, check=True)
    r = subprocess.run(["mlipilot", "run", "--agent", "expert", "--iterations", "0"], cwd=run, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "iteration 0: the harness measures the baseline" in r.stdout and "trial 1: ACCEPTED" in r.stdout
