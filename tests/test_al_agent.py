"""The scripted active-learning agent's decisions (`--agent al`), on a fake history and fake data
actions that return what the real ones would (pools, selections with scores, budget refusals):
first a model, then sample -> select -> label -> add -> experiment at a stage until DP-GEN's accurate
ratio >= 0.9 moves it up a stage, and a finish on the scorecard met, every stage converged, or a spent
budget."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mlipilot.agents import AGENTS, check_agent_spec, open_agent
from mlipilot.agents import al as al_module
from mlipilot.agents.al import ALAgent, ALSettings
from mlipilot.agents.base import IterationLimits
from mlipilot.data_actions import DataRefusal
from mlipilot.records import TrialRecord


@dataclass
class FakePool:
    id: int
    n: int
    early_stops: list = field(default_factory=list)


@dataclass
class FakeSelection:
    id: int
    indices: list
    scores: list
    params: dict = field(default_factory=dict)


@dataclass
class FakeOutcome:
    frames_added: int


class FakeActions:
    """Scores per call of sample: a list of per-frame max-force errors (eV/Å) for each pool."""

    def __init__(self, pools: list[list[float]], budget_calls: int = 1000, committee: bool = False):
        self.pools, self.budget_calls, self.committee = pools, budget_calls, committee
        self.calls: list[tuple] = []
        self.spent = 0

    def sample(self, **kw):
        if kw["driver"] == "reference":  # the bootstrap: the reference's own MD, every frame kept
            self.calls.append(("sample", kw["driver"], kw["method"], kw["temperatures"], kw["n_frames"]))
            self.current = [1.0] * kw["n_frames"]
            return FakePool(len(self.calls), kw["n_frames"])
        self.calls.append(("sample", kw["temperatures"], kw["seed"]))
        scores = self.pools[min(len([c for c in self.calls if c[0] == "sample" and c[1] != "reference"]) - 1,
                                len(self.pools) - 1)]
        self.current = scores
        return FakePool(len(self.calls), len(scores))

    def _spend(self, n):  # refused before anything is spent, as DataActions._label_frames does
        if self.spent + n > self.budget_calls:
            raise DataRefusal("labelling budget spent (...) — train with what you have")
        self.spent += n

    def select(self, pool, strategy, n, seed, trust=None):
        self.calls.append(("select", strategy, n))
        if strategy == "committee" and not self.committee:
            raise DataRefusal("committee needs at least 2 models — run `mlipilot noise`")
        if strategy == "max_error" and n == pool.n:
            self._spend(pool.n)
        order = sorted(range(pool.n), key=lambda i: -self.current[i])[:n]
        params = {}
        if strategy == "committee":
            lo, hi = trust
            params = {"accurate": sum(s < lo for s in self.current)}
        return FakeSelection(len(self.calls), order, [self.current[i] for i in order], params)

    def label(self, selection):
        self.calls.append(("label", len(selection.indices)))
        if self.calls[-2] == ("select", "random", len(selection.indices)):  # max_error labelled its pool already
            self._spend(len(selection.indices))
        return selection

    def add(self, labelled):
        self.calls.append(("add", len(labelled.indices)))
        return FakeOutcome(len(labelled.indices))


class FakeHistory:
    def __init__(self):
        self.rows: list[dict] = []

    def trials(self):  # typed, as mlipilot.ledger.History gives them
        return [TrialRecord.from_json(r) for r in self.rows]

    def incumbent(self):
        accepted = [t for t in self.trials() if t.accepted]
        return accepted[-1] if accepted else None


class FakeTools:
    def __init__(self):
        self.history = FakeHistory()
        self.cfg = object()
        self.config: dict = {}


@pytest.fixture(autouse=True)
def _config_edits(monkeypatch):
    monkeypatch.setattr(al_module, "set_config", lambda tools, updates: tools.config.update(updates))


def step(agent, tools, verdict="accepted", feasible=False):
    res = agent.run_iteration(tools, "", IterationLimits())
    if res.action == "experiment":
        tools.history.rows.append({"trial": len(tools.history.rows) + 1, "verdict": verdict, "feasible": feasible,
                                   "hypothesis": res.text})
    return res


HOT = [1.2, 0.9, 0.8, 0.7, 0.5, 0.45, 0.3, 0.2, 0.1, 0.1]  # accurate ratio 0.4 at lo = 0.4
GOOD = [0.1] * 9 + [0.5]  # 0.9: converged


def test_al_trains_first_then_adds_the_worst_frames_and_climbs_the_stages():
    acts = FakeActions([HOT, GOOD, HOT, GOOD, GOOD, GOOD])
    tools = FakeTools()
    agent = ALAgent(seed=0, settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    first = step(agent, tools)
    assert first.action == "experiment" and tools.config == al_module.INITIAL and not acts.calls
    second = step(agent, tools)  # stage 0 not converged: the 3 worst frames are labelled and added
    assert second.action == "experiment" and "add 3 frames" in second.text and "0.40" in second.text
    assert ("add", 3) in acts.calls and agent.stage == 0
    third = step(agent, tools)  # stage 0 converged -> stage 1 probed in the same iteration, not converged
    assert third.action == "experiment" and agent.stage == 1
    temps = [c[1] for c in acts.calls if c[0] == "sample"]
    assert temps == [[2000.0, 2500.0], [2000.0, 2500.0], [3000.0]]
    strategies = [c[1] for c in acts.calls if c[0] == "select"]
    assert strategies[0] == "committee" and set(strategies[1:]) == {"max_error"}  # refused once: true error
    while (res := step(agent, tools)).action == "experiment":
        pass
    assert res.action == "finish" and "every stage converged" in res.text
    assert agent.stage == len(agent.settings.stages_K) - 1


def test_al_finishes_when_the_scorecard_is_met_and_the_stage_has_converged():
    acts = FakeActions([GOOD])
    tools = FakeTools()
    agent = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    step(agent, tools, feasible=True)
    res = step(agent, tools)
    assert res.action == "finish" and "scorecard met" in res.text and not [c for c in acts.calls if c[0] == "add"]


def test_al_stops_on_a_spent_budget_and_uses_a_committee_when_there_is_one():
    acts = FakeActions([HOT], budget_calls=15)
    tools = FakeTools()
    agent = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    step(agent, tools)
    assert step(agent, tools).action == "experiment"
    res = step(agent, tools)
    assert res.action == "finish" and "budget spent" in res.text
    committee = FakeActions([HOT, GOOD], committee=True)
    tools = FakeTools()
    agent = ALAgent(settings=ALSettings(add_frames=3, committee_trust=(0.4, 1.0)),
                    actions_factory=lambda cfg: committee)
    step(agent, tools)
    res = step(agent, tools)
    assert res.action == "experiment" and "committee accurate ratio 0.40" in res.text
    assert [c for c in committee.calls if c[0] == "select"] == [("select", "committee", 3)]


def baseline(tools):
    tools.history.rows.append({"trial": 1, "verdict": "accepted", "feasible": False,
                               "hypothesis": "baseline: the shipped workspace"})


def test_al_first_trial_after_the_baseline_adds_reference_md_across_every_stage():
    acts = FakeActions([HOT, GOOD])
    tools = FakeTools()
    baseline(tools)
    agent = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    first = step(agent, tools)  # config and the reference-driven data go in one trial
    assert first.action == "experiment" and tools.config == al_module.INITIAL
    assert first.text.startswith(al_module.INITIAL_HYPOTHESIS)
    assert "add 100 frames of reference MD heated 2000 -> 3500 K" in first.text
    # the reference drives a heating ramp over every stage; all of it is labelled and added
    assert acts.calls == [("sample", "reference", "ramp", [[2000.0, 3500.0]], 100), ("select", "random", 100),
                          ("label", 100), ("add", 100)]
    assert acts.spent == 100
    tools.config.clear()
    second = step(agent, tools)  # the incumbent's MD at stage 0 now; HOT: the 3 worst are added
    assert second.action == "experiment" and "add 3 frames" in second.text and not tools.config  # set once
    assert acts.calls[4] == ("sample", [2000.0, 2500.0], 20)
    while (res := step(agent, tools)).action == "experiment":
        pass
    assert res.action == "finish" and "every stage converged" in res.text


def test_al_adds_only_frames_outside_the_trust_window_and_skips_a_bootstrap_it_cannot_pay():
    acts = FakeActions([HOT], budget_calls=50)
    tools = FakeTools()
    baseline(tools)
    agent = ALAgent(settings=ALSettings(add_frames=10), actions_factory=lambda cfg: acts)
    first = step(agent, tools)  # 100 labels > 50: refused, the configuration is still tried
    assert first.action == "experiment" and "labelling budget spent" in first.text
    assert not [c for c in acts.calls if c[0] == "add"]
    second = step(agent, tools)  # HOT has 6 frames >= 0.4 eV/Å: 6 added, not add_frames = 10
    assert second.action == "experiment" and ("add", 6) in acts.calls and "add 6 frames" in second.text
    no_bootstrap = FakeActions([HOT])
    tools = FakeTools()
    baseline(tools)
    agent = ALAgent(settings=ALSettings(add_frames=3, bootstrap_K=None), actions_factory=lambda cfg: no_bootstrap)
    assert "add 3 frames" in step(agent, tools).text and no_bootstrap.calls[0][1] == [2000.0, 2500.0]


def test_al_samples_again_when_every_run_stopped_before_a_frame():
    acts = FakeActions([[], HOT])
    tools = FakeTools()
    agent = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    step(agent, tools)
    res = step(agent, tools)
    assert res.action == "experiment" and "add 3 frames" in res.text
    assert [c[0] for c in acts.calls] == ["sample", "sample", "select", "select", "select", "label", "add"]


def test_al_needs_a_model_to_sample():
    tools = FakeTools()
    agent = ALAgent(actions_factory=lambda cfg: pytest.fail("no data action without a model"))
    first = step(agent, tools, verdict="failed")
    assert first.action == "experiment" and tools.config == al_module.INITIAL
    assert step(agent, tools).action == "finish"


def test_al_is_registered():
    assert AGENTS.resolve("al") is ALAgent and check_agent_spec("al") == "registered"
    with open_agent("al", seed=3) as agent:
        assert isinstance(agent, ALAgent) and agent.seed == 3


def test_data_growth_figure_has_one_line_per_run(tmp_path):
    from mlipilot.data_growth import plot_growth

    rows = {"al seed 0": [{"trial": 1, "composite": 3.1, "feasible": False, "train_frames": 146, "labels_spent": 0},
                          {"trial": 2, "composite": 2.4, "feasible": True, "train_frames": 161, "labels_spent": 30}],
            "expert seed 0": [{"trial": 1, "composite": 3.2, "feasible": False, "train_frames": 146,
                               "labels_spent": 0}]}
    png = plot_growth(rows, tmp_path)
    assert png.is_file() and png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_al_moves_up_a_stage_after_its_rounds_there_even_unconverged():
    acts = FakeActions([HOT])
    tools = FakeTools()
    agent = ALAgent(settings=ALSettings(add_frames=3, max_rounds_per_stage=2), actions_factory=lambda cfg: acts)
    step(agent, tools)
    for _ in range(5):
        assert step(agent, tools).action == "experiment"
    temps = [c[1] for c in acts.calls if c[0] == "sample"]
    # two additions per stage, then the next stage without sampling the one it leaves; the last keeps going
    assert temps == [[2000.0, 2500.0]] * 2 + [[3000.0]] * 2 + [[3500.0]]
    assert agent.stage == 2


def test_a_resumed_al_run_takes_up_its_stage_from_the_hypotheses():
    acts = FakeActions([HOT])
    tools = FakeTools()
    first = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    step(first, tools)
    step(first, tools)
    step(first, tools)  # two additions at stage 0
    resumed = ALAgent(settings=ALSettings(add_frames=3), actions_factory=lambda cfg: acts)
    res = step(resumed, tools)
    assert res.action == "experiment" and resumed.stage == 1 and "stage 1 at 3000 K" in res.text
