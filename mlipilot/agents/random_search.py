"""Random search over the run's declared knob space (knobs.yaml)."""

from __future__ import annotations

import random

from mlipilot.agents.base import Agent, IterationLimits, IterationResult
from mlipilot.agents.config_edits import load_knobs, set_config
from mlipilot.workspace_tools import WorkspaceTools


class RandomAgent(Agent):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        n = len(tools.ledger.trials())
        if n == 0:
            return IterationResult("experiment", "baseline: measure the shipped configuration")
        rng = random.Random(f"{self.seed}-{n}")  # resumable: the draw depends only on seed and trial count
        sample = {k: rng.choice(v) for k, v in load_knobs(tools).items()}
        set_config(tools, sample)
        return IterationResult("experiment", "random sample: " + ", ".join(f"{k}={v}" for k, v in sample.items()))
