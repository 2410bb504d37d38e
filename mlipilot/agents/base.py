"""The agent interface: one iteration = edits through WorkspaceTools, ending in an experiment
(a hypothesis for the harness to test) or a finish. LLMs and non-LLM baselines implement the
same method, so the benchmark compares them on equal terms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from mlipilot.records import ExitStatus, Outcome
from mlipilot.workspace_tools import WorkspaceTools


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = 0.0  # None once any call could not be priced
    llm_calls: int = 0
    tool_errors: int = 0  # malformed calls, unknown tools, refused paths, bad JSON, bad option values
    refused: int = 0  # well-formed attempts the harness refused: no-op edits, configurations already trained
    cached_tokens: int = 0  # prompt tokens the server reused from its cache (when it says)
    llm_seconds: float = 0.0
    # LLM agents: each call refused or answered with an error, {"call": ..., "why": ...} (the next
    # iteration's brief names them), and every call's signature (a replayed iteration shows as equal lists)
    refused_calls: list[dict] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def add_cost(self, cost: float | None) -> None:
        self.cost = None if cost is None or self.cost is None else self.cost + cost


@dataclass
class IterationLimits:
    max_llm_calls: int = 12
    max_tokens_left: int | None = None  # run-level token budget remaining
    max_cost_left: float | None = None
    iteration: int | None = None  # the run's iteration number (LLM agents derive their sampling seed from it)


@dataclass
class IterationResult:
    action: Outcome  # experiment | finish | stop (the loop may turn an experiment into refused)
    text: str  # the hypothesis, the summary, or why the iteration stopped
    usage: Usage = field(default_factory=Usage)
    exit_status: ExitStatus | None = None  # with action stop: llm_error, budget_llm_calls, budget_tokens, ...


class Agent(ABC):
    name: str = "agent"  # e.g. "expert", "openai/gpt-4.1"
    model: str = "none"
    progress: Callable[[str], None] = staticmethod(lambda line: None)  # set by the loop for live output

    @abstractmethod
    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        """Make edits with `tools`, then return an experiment or a finish."""
