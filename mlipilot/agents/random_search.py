"""Random search over the run's declared knob space (knobs.yaml)."""

from __future__ import annotations

import random

from mlipilot.agents.base import Agent, IterationLimits, IterationResult
from mlipilot.agents.config_edits import load_knobs, set_untried
from mlipilot.workspace_tools import WorkspaceTools


class RandomAgent(Agent):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        n = len(tools.history.trials())
        rng = random.Random(f"{self.seed}-{n}")  # resumable: the draws depend only on seed and trial count
        knobs = load_knobs(tools)
        sample = set_untried(tools, lambda i: {k: rng.choice(v) for k, v in knobs.items()})
        return IterationResult("experiment", "random sample: " + ", ".join(f"{k}={v}" for k, v in sample.items()))
