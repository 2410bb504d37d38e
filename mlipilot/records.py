"""Names shared by the ledger's writers and readers: how a run ended, how an iteration ended, who
made a trial. StrEnums, so the ledger's JSON keeps the plain strings older ledgers hold."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

HARNESS_AGENT = "harness"  # the `agent` of the trial the harness itself makes: the unedited baseline


class ExitStatus(StrEnum):
    FINISHED = "finished"  # the agent called finish
    BUDGET_ITERATIONS = "budget_iterations"
    BUDGET_TOKENS = "budget_tokens"
    BUDGET_COST = "budget_cost"
    BUDGET_WALL = "budget_wall"
    BUDGET_LLM_CALLS = "budget_llm_calls"  # one iteration's calls spent: the run goes on
    LLM_ERROR = "llm_error"
    INTERRUPTED = "interrupted"
    ERROR = "error"


# a run that ended like this is complete (its numbers count); the others stopped early
COMPLETED = frozenset({ExitStatus.FINISHED, ExitStatus.BUDGET_ITERATIONS, ExitStatus.BUDGET_TOKENS,
                       ExitStatus.BUDGET_COST, ExitStatus.BUDGET_WALL})
# an iteration that stopped like this ends the run
RUN_ENDING = frozenset({ExitStatus.LLM_ERROR, ExitStatus.BUDGET_TOKENS, ExitStatus.BUDGET_COST})


class FailureKind(StrEnum):
    """Why a trial failed (the ledger's `failure`), so readers never match the reason's text."""
    TRAIN_CRASH = "train_crash"  # train/train.py exited non-zero
    TIMEOUT = "timeout"  # training, export or the job itself ran out of time
    SUBMIT_REFUSED = "submit_refused"  # the scheduler refused or will never start the job
    SMOKE = "smoke"  # training ended without a usable model (no file, not exportable as data)
    SCORE_CRASH = "score_crash"
    INTEGRITY = "integrity"  # the store's seal or the protected files changed
    SANDBOX = "sandbox"  # the training sandbox could not start
    INTERRUPTED = "interrupted"  # the launcher stopped before the verdict


class Outcome(StrEnum):
    """How an agent iteration ended."""
    EXPERIMENT = "experiment"  # a trial was trained
    FINISH = "finish"
    STOP = "stop"  # limits or errors (exit_status says which)
    REFUSED = "refused"  # the harness refused the experiment (no change, or a configuration already trained)


@dataclass(frozen=True)
class Spent:
    """What a run has used: agent iterations (the harness's baseline not counted), tokens, cost."""
    iterations: int = 0
    tokens: int = 0
    cost: float | None = 0.0  # None once any call could not be priced

    def __add__(self, other: "Spent") -> "Spent":
        cost = None if self.cost is None or other.cost is None else self.cost + other.cost
        return Spent(self.iterations + other.iterations, self.tokens + other.tokens, cost)
