"""Names shared by the ledger's writers and readers: how a run ended, how an iteration ended, who
made a trial. StrEnums, so the ledger's JSON keeps the plain strings older ledgers hold."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import ClassVar

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


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _plain(v):
    return str(v) if isinstance(v, StrEnum) else v


class _Row:
    """to_json/from_json for ledger rows: unknown keys of older or newer ledgers are kept in `extra`
    (trials) or ignored (events); missing keys take the defaults."""

    @classmethod
    def from_json(cls, row: dict):
        names = {f.name for f in fields(cls)}
        obj = cls(**{k: v for k, v in row.items() if k in names})
        if "extra" in names:
            obj.extra = {k: v for k, v in row.items() if k not in names and k != "event"}
        return obj

    def to_json(self) -> dict:
        out = {k: _plain(v) for k, v in asdict(self).items() if k != "extra"}
        out.update(getattr(self, "extra", {}) or {})
        event = getattr(self, "EVENT", None)
        return {"event": event, **out} if event and "event" not in out else out


@dataclass(kw_only=True)
class _Usage:
    """What an agent iteration spent (trials and events carry it alike)."""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = 0.0
    llm_calls: int = 0
    tool_errors: int = 0
    refused: int = 0
    cached_tokens: int = 0
    llm_seconds: float = 0.0


@dataclass
class TrialRecord(_Usage, _Row):
    """A trial's latest ledger row: the fields readers use by name; everything else in `extra`."""
    trial: int
    status: str = "submitted"
    verdict: str | None = None
    reason: str | None = None
    failure: str | None = None  # a FailureKind when the trial failed
    agent: str = "human"
    model: str = "none"
    hypothesis: str = ""
    commit: str | None = None
    parent_commit: str | None = None
    iteration: int | None = None
    metrics: dict | None = None
    composite: float | None = None
    feasible: bool = False
    total_violation: float | None = None
    knobs: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def by_harness(self) -> bool:
        return self.agent == HARNESS_AGENT

    @property
    def interrupted(self) -> bool:
        """Ended by a stopped launcher, not by its experiment: no spent iteration, free to retry."""
        return self.failure == FailureKind.INTERRUPTED


def interrupted(row: dict) -> bool:
    """The same for a ledger row read as a dict."""
    return row.get("failure") == FailureKind.INTERRUPTED


@dataclass
class IterationEvent(_Usage, _Row):
    """An agent iteration that trained nothing (finish, a stop, a refusal)."""
    EVENT: ClassVar[str] = "iteration"
    outcome: str = Outcome.STOP
    text: str = ""
    exit_status: str | None = None
    agent: str = ""
    model: str = ""
    iteration: int | None = None
    brief_chars: int = 0
    parallel: int | None = None
    at: str = field(default_factory=_now)


@dataclass
class RunEvent(_Row):
    """run_start, run_end or run_error."""
    event: str = "run_start"
    agent: str | None = None
    model: str | None = None
    budget: dict | None = None
    exit_status: str | None = None
    iterations: int | None = None
    tokens: int | None = None
    cost: float | None = None
    wall_s: float | None = None
    error: str | None = None
    at: str = field(default_factory=_now)

    def to_json(self) -> dict:
        return {k: v for k, v in super().to_json().items() if v is not None or k == "cost"}


@dataclass
class ValidationEvent(_Row):
    """`mlipilot validate`'s verdict on one trial's model (never a `trial` key: it is not a trial row)."""
    EVENT: ClassVar[str] = "validation"
    validated_trial: int = 0
    commit: str | None = None
    passed: bool = False
    failed_checks: list = field(default_factory=list)
    spec: str | None = None
    spec_sha256: str | None = None
    seconds: float = 0.0
    at: str = field(default_factory=_now)
