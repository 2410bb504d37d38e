"""Tool arguments built to crash the run (issue 33 item 5): an agent sends a seed of "abc", 1e400, -1,
true, NaN or Infinity, an argument the schema does not list (timestep_fs), a negative temperature, a
giant n_frames... Each comes back as one line of error text naming the argument, the value and what
is allowed; nothing runs (no job folder, pool, selection or ledger row appears) and the agent loop
goes on. Sampled frames with a non-finite position, cell, energy or force never enter a pool."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read
from mlipilot_testkit import commit_trainer, copy_trainer

from fake_llm_server import FakeLLMServer
from mlipilot.data_actions import DataActions, DataRefusal
from mlipilot.data_actions import sampling
from mlipilot.data_actions.records import Method
from mlipilot.data_actions.tools import DATA_TOOL_SCHEMAS
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.tool_args import ArgumentError, check_arguments, unsupported_keywords
from mlipilot.workspace_tools import TOOL_SCHEMAS, ToolError, WorkspaceTools

DATA_TOML = "\n[data]\nlabel_budget = {{ calls = 20 }}\n"


def _init(path, fast_benchmark, trainer=None):
    import mlipilot.rundir as rundir

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rundir, "TEMPLATE", rundir.TEMPLATE + DATA_TOML)
        root = init_run(str(fast_benchmark), path, executor="debug", progress=lambda s: None)
    if trainer:
        commit_trainer(root, trainer)
    return load_run_config(root)


@pytest.fixture(scope="module")
def run(tmp_path_factory, fast_benchmark):
    """A run with [data] and one pool of 4 rattled frames (pool 1), so select_data has something to
    select from: a bad call that got through would run and leave a record."""
    cfg = _init(tmp_path_factory.mktemp("args") / "run", fast_benchmark)
    pool = DataActions(cfg, progress=lambda s: None).sample("*", driver="reference", method="rattle", n_frames=4,
                                                            amplitude=0.02)
    assert pool.id == 1 and pool.n == 4
    return cfg


def snapshot(cfg) -> dict[str, tuple[int, int]]:
    """Every file of the store and of data/ (a job folder, pool, selection, label, ledger row, lock)."""
    files = [*cfg.store.rglob("*"), *(cfg.root / "data").rglob("*")]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.is_file()}


SAMPLE = '"source": "*", "driver": "reference", "method": "rattle", "n_frames": 2'
MD = '"source": "*", "driver": "reference", "method": "langevin", "n_frames": 2, "steps": 10'
SELECT = '"pool": 1, "strategy": "random", "n": 1'
BAD_SEEDS = ['"abc"', "1e400", "-1", "true", "NaN", "Infinity", "-Infinity", "2.5", "2147483648", '"7"', "[1]"]
# (tool, the raw JSON arguments as the model wrote them, the argument the error must name)
BAD_CALLS = [
    *[("sample_data", f"{{{SAMPLE}, \"seed\": {s}}}", "seed") for s in BAD_SEEDS],
    *[("select_data", f"{{{SELECT}, \"seed\": {s}}}", "seed") for s in BAD_SEEDS],
    ("sample_data", f'{{{SAMPLE}, "timestep_fs": NaN}}', "timestep_fs"),
    ("sample_data", f'{{{MD}, "temperatures": [300], "timestep_fs": 1.0}}', "timestep_fs"),
    ("sample_data", f'{{{MD}, "temperatures": [-300]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [0]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [NaN]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [1e400]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [[300, Infinity]]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [[300]]}}', "temperatures[0]"),
    ("sample_data", f'{{{MD}, "temperatures": [300], "steps": 1000000000}}', "steps"),
    ("sample_data", '{"source": "*", "driver": "reference", "method": "rattle", "n_frames": 1000000000}', "n_frames"),
    ("sample_data", '{"source": "*", "driver": "reference", "method": "rattle", "n_frames": 1e400}', "n_frames"),
    ("sample_data", '{"source": "*", "driver": "reference", "method": "rattle", "n_frames": 0}', "n_frames"),
    ("sample_data", '{"source": "*", "driver": "reference", "method": "rattle", "n_frames": "2"}', "n_frames"),
    ("sample_data", f'{{{SAMPLE}, "amplitude": NaN}}', "amplitude"),
    ("sample_data", f'{{{SAMPLE}, "amplitude": 0}}', "amplitude"),
    ("sample_data", f'{{{SAMPLE}, "amplitude": 0.6}}', "amplitude"),
    ("sample_data", f'{{{SAMPLE}, "structures": 1e9}}', "structures"),
    ("sample_data", f'{{{SAMPLE}, "driver": "god"}}', "driver"),
    ("sample_data", '{"source": 5, "method": "rattle", "n_frames": 2}', "source"),
    ("sample_data", '{"source": "*\\ud800", "method": "rattle", "n_frames": 2}', "source"),
    ("sample_data", '{"method": "rattle", "n_frames": 2}', "source"),
    ("select_data", f'{{{SELECT}, "timestep_fs": 1}}', "timestep_fs"),
    ("select_data", '{"pool": 1, "strategy": "random", "n": true}', "n"),
    ("select_data", '{"pool": 1, "strategy": "random", "n": 1e400}', "n"),
    ("select_data", '{"pool": 1, "strategy": "random", "fraction": NaN}', "fraction"),
    ("select_data", '{"pool": 1, "strategy": "random", "fraction": 0}', "fraction"),
    ("select_data", '{"pool": 1, "strategy": "random", "fraction": 1.5}', "fraction"),
    ("select_data", '{"pool": 1, "strategy": "committee", "n": 1, "trust": [NaN, 1]}', "trust[0]"),
    ("select_data", '{"pool": 1, "strategy": "committee", "n": 1, "trust": [-1, 1]}', "trust[0]"),
    ("select_data", '{"pool": 1, "strategy": "committee", "n": 1, "trust": [0, Infinity]}', "trust[1]"),
    ("select_data", '{"pool": 1, "strategy": "random", "n": 1, "quotas": {"md*": -1}}', 'quotas["md*"]'),
    ("select_data", '{"pool": 1, "strategy": "random", "n": 1, "quotas": {"md*": NaN}}', 'quotas["md*"]'),
    ("select_data", '{"pool": "1", "strategy": "random", "n": 1}', "pool"),
    ("select_data", '{"pool": 1e400, "strategy": "random", "n": 1}', "pool"),
    ("label_data", '{"selection": "1"}', "selection"),
    ("label_data", '{"selection": -1}', "selection"),
    ("add_data", '{"labelled": 1, "split": "holdout"}', "split"),
    ("prune_data", '{"rule": 5}', "rule"),
    ("data_status", '{"verbose": true}', "verbose"),
]


@pytest.mark.parametrize("tool,raw,argument", BAD_CALLS, ids=[f"{t}:{r[-40:]}" for t, r, _ in BAD_CALLS])
def test_a_bad_argument_is_one_line_of_error_and_nothing_runs(run, tool, raw, argument):
    args = json.loads(raw)  # what LLMAgent does with the call's arguments (NaN, Infinity, 1e400 -> inf included)
    before = snapshot(run)
    with pytest.raises(ToolError) as e:
        WorkspaceTools(run).call(tool, args)
    text = str(e.value)
    assert text.startswith(f"bad arguments for {tool}:") and len(text.splitlines()) == 1, text
    assert argument in text and ("allowed" in text or "give" in text), text
    assert snapshot(run) == before  # no job folder, pool, selection, label or ledger row


def test_the_error_names_the_value_and_what_is_allowed(run):
    tools = WorkspaceTools(run)
    cases = {f'{{{SAMPLE}, "seed": 1e400}}': "seed = Infinity: give an integer from 0 to 2147483647",
             f'{{{SAMPLE}, "seed": NaN}}': "seed = NaN: give an integer from 0 to 2147483647",
             f'{{{SAMPLE}, "seed": "abc"}}': 'seed = "abc": give an integer from 0 to 2147483647',
             f'{{{MD}, "temperatures": [-300]}}': "temperatures[0] = -300: give a finite number in [1, 5000]",
             f'{{{SAMPLE}, "amplitude": 0.6}}': "amplitude = 0.6: give a finite number in (0, 0.5]",
             f'{{{SAMPLE}, "timestep_fs": NaN}}': 'unknown argument "timestep_fs" — allowed: source, driver, method, '
                                                   "temperatures, n_frames, steps, structures, amplitude, seed"}
    for raw, expected in cases.items():
        with pytest.raises(ToolError) as e:
            tools.call("sample_data", json.loads(raw))
        assert expected in str(e.value) and str(e.value).endswith("Nothing ran."), str(e.value)


def test_good_arguments_still_run(run):
    """Integral floats are integers, null is "the default"; the pool and selection come back as before."""
    tools = WorkspaceTools(run)
    out = tools.call("sample_data", json.loads(f'{{{SAMPLE}, "seed": 3.0, "amplitude": null, "structures": 2}}'))
    assert out.startswith("pool ") and ": 2 frames" in out and "'seed': 3" in out
    pool = int(out.split(":")[0].split()[1])
    out = tools.call("select_data", {"pool": pool, "strategy": "random", "n": 1.0, "seed": 2**31 - 1, "trust": None})
    assert out.startswith("selection ") and f"1 of pool {pool}" in out


def test_workspace_tools_check_their_schemas_too(run):
    tools = WorkspaceTools(run)
    for name, args, expected in [
            ("list_files", {"recursive": True}, 'unknown argument "recursive" — allowed: none'),
            ("read_file", {"path": "train/config.yaml", "start_line": "2"}, 'start_line = "2": give an integer'),
            ("read_file", {"path": "train/config.yaml", "end_line": math.inf}, "end_line = Infinity"),
            ("read_file", {"path": "train/config.yaml", "lines": 3}, "allowed: path, start_line, end_line"),
            ("show_trial", {"trial": 1e400}, "trial = Infinity: give an integer"),
            ("show_trial", {"trial": True}, "trial = true"),
            ("write_file", {"path": "train/x.txt", "content": 5}, "content = 5: give a string"),
            ("edit_file", {"path": "train/config.yaml", "old_text": "a"}, "missing new_text")]:
        with pytest.raises(ToolError, match="bad arguments for " + name) as e:
            tools.call(name, args)
        assert expected in str(e.value), str(e.value)
    assert not (run.root / "train" / "x.txt").exists()
    assert "   2| " in tools.call("read_file", {"path": "train/config.yaml", "start_line": 2.0, "end_line": None})
    # set_options keeps its own, more forgiving check (flat objects, the object as a JSON string)
    with pytest.raises(ToolError, match="did you mean"):
        tools.call("set_options", {"updates": {"energy_wieght": 1}})


def test_an_exception_inside_a_data_tool_is_a_tool_error(run, monkeypatch):
    tools = WorkspaceTools(run)
    for exc in (RuntimeError("boom"), OverflowError("int too large"), ValueError("bad"), ZeroDivisionError()):
        def explode(self, *a, exc=exc, **kw):
            raise exc

        monkeypatch.setattr(DataActions, "sample", explode)
        with pytest.raises(ToolError, match=f"sample_data failed: {type(exc).__name__}"):
            tools.call("sample_data", json.loads(f"{{{SAMPLE}}}"))
    monkeypatch.setattr(DataActions, "sample", lambda self, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # an interrupt still stops the run
        tools.call("sample_data", json.loads(f"{{{SAMPLE}}}"))


def test_every_tool_schema_is_checked_and_the_bounds_are_the_actions(run):
    from mlipilot.data_actions.actions import MAX_FRAMES, MAX_STEPS

    for s in [*DATA_TOOL_SCHEMAS, *TOOL_SCHEMAS, *WorkspaceTools(run).schemas()]:
        assert unsupported_keywords(s["function"]["parameters"]) == [], s["function"]["name"]
    props = {s["function"]["name"]: s["function"]["parameters"]["properties"] for s in DATA_TOOL_SCHEMAS}
    assert "timestep_fs" not in props["sample_data"]  # MD samples at the scorecard's timestep
    assert props["sample_data"]["n_frames"]["maximum"] == MAX_FRAMES == props["select_data"]["n"]["maximum"]
    assert props["sample_data"]["steps"]["maximum"] == MAX_STEPS
    kelvin = props["sample_data"]["temperatures"]["items"]["anyOf"][0]
    assert (kelvin["minimum"], kelvin["maximum"]) == sampling.T_RANGE_K
    for tool in ("sample_data", "select_data"):
        assert props[tool]["seed"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    with pytest.raises(ValueError, match="does not support"):  # a schema it cannot check is not waved through
        check_arguments("x", {"type": "object", "properties": {"a": {"type": "string", "pattern": "^a"}}}, {"a": "b"})
    with pytest.raises(ArgumentError, match="an integer with thousands of digits"):
        check_arguments("x", {"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": 10**5000})


@pytest.mark.slow  # seconds each: kept out of the fast lane
def test_the_agent_loop_answers_each_bad_call_and_goes_on(run):
    """Through LLMAgent's real loop (litellm, an OpenAI-compatible server): every bad call is answered
    with an error the model reads, counted as a tool error, and the iteration ends as the model says."""
    from mlipilot.agents.base import IterationLimits
    from mlipilot.agents.llm import LLMAgent
    from mlipilot.records import Outcome

    calls = [(t, r) for t, r, _ in BAD_CALLS if t in ("sample_data", "select_data")][::3]
    before = snapshot(run)
    script = [{"tool": t, "raw_args": r} for t, r in calls] + [{"tool": "finish", "args": {"summary": "done"}}]
    with FakeLLMServer(script) as server:
        agent = LLMAgent("openai/fake-model", api_base=server.api_base, backoff_s=0.01)
        result = agent.run_iteration(WorkspaceTools(run), "brief", IterationLimits(max_llm_calls=len(script) + 1))
    assert result.action == Outcome.FINISH and result.usage.tool_errors == len(calls)
    replies = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(replies) == len(calls) and all(r.startswith("Error: bad arguments for ") for r in replies), replies
    assert snapshot(run) == before


# -- sampled frames pass the non-finite guard ------------------------------------------------------------
class Flat(Calculator):
    """Finite energy and zero forces whatever the positions (a cutoff potential far from everything)."""
    implemented_properties = ["energy", "forces"]

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": self.value, "forces": np.full((len(atoms), 3), self.value)}


def _starts(run, n=2):
    return read(run.root / "data" / "train.xyz", index=f":{n}", format="extxyz")


def test_md_frames_with_non_finite_positions_never_enter_a_pool(run):
    starts = _starts(run)
    starts[0].positions[0, 0] = np.nan  # a NaN moves nowhere finite; the potential still answers finitely
    frames, stats, stops = sampling.run_md(starts, Flat(), Method.LANGEVIN, [(300.0, 300.0)], 6, 12, 1.0,
                                           sampling.Guards(0.1, 100.0), seed=0)
    assert all(sampling.non_finite(a) is None for a in frames)
    assert all(s["start"].endswith("#1") for s in stats) and frames  # the finite start still samples
    assert len(stops) == 1 and stops[0]["structure"].endswith("#0") and "non-finite positions" in stops[0]["reason"]


@pytest.mark.parametrize("timestep", [math.nan, math.inf, -1.0, 0.0, 100.0])
def test_md_with_a_timestep_that_is_not_finite_and_positive_runs_nothing(run, timestep):
    frames, stats, stops = sampling.run_md(_starts(run), Flat(), Method.LANGEVIN, [(300.0, 300.0)], 4, 8,
                                           timestep, sampling.Guards(), seed=0)
    assert frames == [] and stats == [] and len(stops) == 1 and "no MD ran" in stops[0]["reason"]


def test_perturbed_frames_with_non_finite_energy_or_forces_are_dropped(run):
    frames, stats, stops = sampling.perturb(_starts(run), Method.RATTLE, 3, 0.01, 0, calc=Flat(math.nan))
    assert frames == [] and stats == [] and len(stops) == 3
    assert all("non-finite energy/forces" in s["reason"] and s["step"] == 0 for s in stops)
    frames, _, stops = sampling.perturb(_starts(run), Method.RATTLE, 3, 0.01, 0, calc=Flat(0.0))
    assert len(frames) == 3 and stops == []


def test_the_last_guard_before_the_pool_file(run):
    good, nan_pos, inf_cell, nan_force = (a.copy() for a in _starts(run, 4))
    nan_pos.positions[1, 2] = np.nan
    inf_cell.cell[0, 0] = np.inf
    stats = [{"start": f"s#{i}", "temperature": 300.0, "step": 5, "max_f": f}
             for i, f in enumerate([1.0, 1.0, None, math.nan])]
    frames, kept, stops = sampling.drop_non_finite([good, nan_pos, inf_cell, nan_force], stats, [{"x": 1}])
    assert frames == [good] and kept == stats[:1]
    assert [s.get("structure") for s in stops] == [None, "s#1", "s#2", "s#3"]
    assert [s["reason"].split(":")[0] for s in stops[1:]] == ["non-finite positions", "non-finite cell",
                                                             "non-finite forces"]


def test_a_sample_job_writes_no_non_finite_frame(tmp_path, fast_benchmark, monkeypatch):
    """The whole path (DataActions.sample -> the job -> pool file): whatever the sampler returns,
    the pool holds only finite frames and says what it dropped; labelling the pool charges nothing
    for a dropped frame."""
    cfg = _init(tmp_path / "run", fast_benchmark)
    real = sampling.perturb

    def poisoned(*a, **kw):
        frames, stats, stops = real(*a, **kw)
        frames[0].positions[0, 0] = np.nan
        return frames, stats, stops

    monkeypatch.setattr(sampling, "perturb", poisoned)  # the debug executor runs the job in this process
    acts = DataActions(cfg, progress=lambda s: None)
    pool = acts.sample("*", driver="reference", method="rattle", n_frames=3, structures=3, amplitude=0.01)
    assert pool.n == 2 and len(pool.frames_stats) == 2
    assert len(pool.early_stops) == 1 and "non-finite positions" in pool.early_stops[0]["reason"]
    frames = acts.pool_frames(pool)
    assert len(frames) == 2 and all(np.isfinite(a.positions).all() for a in frames)


@pytest.mark.slow  # seconds each: kept out of the fast lane
@pytest.mark.parametrize("kwargs", [{"timestep_fs": math.nan}, {"timestep_fs": math.inf}, {"timestep_fs": -1.0},
                                    {"timestep_fs": "abc"}, {"seed": -1}, {"seed": math.inf}, {"seed": "abc"},
                                    {"seed": True}], ids=lambda kw: "{}={!r}".format(*next(iter(kw.items()))))
def test_the_python_api_refuses_a_bad_timestep_or_seed_before_any_job(tmp_path, fast_benchmark, kwargs):
    """Scripted agents call DataActions directly: the same values are refused there, before any job
    (needs DataActions.sample/select to call sampling.check_timestep / check_seed)."""
    cfg = _init(tmp_path / "run", fast_benchmark)
    acts = DataActions(cfg, progress=lambda s: None)
    before = snapshot(cfg)
    with pytest.raises(DataRefusal, match=next(iter(kwargs))):
        acts.sample("*", driver="reference", method="langevin", temperatures=[300], n_frames=2, steps=10, **kwargs)
    after = snapshot(cfg)
    assert not [p for p in after if p not in before and "/data/" in p and "lock" not in p]
    if "seed" in kwargs:
        with pytest.raises(DataRefusal, match="seed"):
            acts.select(_plant_pool(acts), "random", n=1, **kwargs)


def _plant_pool(acts: DataActions) -> int:
    from ase.io import write

    from mlipilot.data_actions.records import Pool

    frames = read(acts.root / "data" / "train.xyz", index=":2", format="extxyz")
    pool = Pool(acts._next_id("pools"), "*", "reference", "rattle", {}, len(frames))
    write(acts._folder("pools") / f"{pool.id:04d}.xyz", frames, format="extxyz")
    acts._save("pools", pool)
    return pool.id


@pytest.mark.slow  # the harness's baseline (a copied untrained model, scored) and `mlipilot run`
def test_mlipilot_run_goes_on_after_bad_tool_arguments(tmp_path, fast_benchmark, untrained_model):
    from mlipilot.cli import main
    from mlipilot.ledger import Ledger

    cfg = _init(tmp_path / "run", fast_benchmark, copy_trainer(str(untrained_model)))
    bad = [f'{{{SAMPLE}, "seed": "abc"}}', f'{{{SAMPLE}, "seed": 1e400}}', f'{{{SELECT}, "seed": -1}}',
           f'{{{SAMPLE}, "timestep_fs": NaN}}', f'{{{MD}, "temperatures": [-300]}}']
    script = [{"tool": "sample_data" if '"source"' in r else "select_data", "raw_args": r} for r in bad]
    script += [{"tool": "data_status", "args": {}}, {"tool": "finish", "args": {"summary": "done"}}]
    with FakeLLMServer(script) as server:
        rc = main(["run", "--run", str(cfg.root), "--agent", "openai/fake-model", "--api-base", server.api_base,
                   "--iterations", "2", "--llm-calls", str(len(script) + 1)])
    rows = Ledger(cfg.store / "ledger.jsonl").rows()
    end = [r for r in rows if r.get("event") == "run_end"][-1]
    assert rc == 0 and end["exit_status"] == "finished", end
    assert not [r for r in rows if r.get("event") in ("run_error", "data_action")]
    iteration = [r for r in rows if r.get("event") == "iteration"][-1]
    assert iteration["tool_errors"] == len(bad)
    replies = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert all(r.startswith("Error: bad arguments for ") for r in replies[:len(bad)]) and "training set:" in replies[-1]
    assert not (cfg.store / "data" / "jobs").exists() or not list((cfg.store / "data" / "jobs").iterdir())
