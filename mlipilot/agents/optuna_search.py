"""Optuna's TPE sampler over the declared knob space; the study is rebuilt from the ledger each
iteration, so a resumed run continues with everything it has learnt."""

from __future__ import annotations

from mlipilot.agents.base import Agent, IterationLimits, IterationResult
from mlipilot.agents.config_edits import load_knobs, set_untried
from mlipilot.workspace_tools import WorkspaceTools

INFEASIBLE_OFFSET = 1000.0  # any feasible composite beats any infeasible one


class OptunaAgent(Agent):
    name = "optuna"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trials = tools.history.trials()
        knobs = load_knobs(tools)
        dists = {k: optuna.distributions.CategoricalDistribution(v) for k, v in knobs.items()}
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=self.seed))
        for row in trials:
            params = row.knobs
            if not params or row.composite is None:
                continue
            value = row.composite + (0.0 if row.feasible else INFEASIBLE_OFFSET + row.total_violation)
            params = {k: v for k, v in params.items() if k in dists and v in knobs[k]}
            if len(params) == len(dists):
                study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
        def draw(i: int) -> dict:
            if i:  # the previous ask repeats a configuration already trained: tell TPE, ask again
                study.tell(draw.trial, state=optuna.trial.TrialState.FAIL)
            draw.trial = study.ask(dists)
            return draw.trial.params

        params = set_untried(tools, draw)
        return IterationResult("experiment", "optuna TPE: " + ", ".join(f"{k}={v}" for k, v in params.items()))

