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
            obj.extra = {k: v for k, v in row.items() if k not in names and k not in ("event", "prev")}
        return obj

    def to_json(self) -> dict:
        out = {k: _plain(v) for k, v in asdict(self).items() if k != "extra"}
        out.update(getattr(self, "extra", {}) or {})
        event = getattr(self, "EVENT", None)
        return {"event": event, **out} if event and "event" not in out else out

    # The row's JSON view, for tests and benchmark scripts that held rows as dicts (the package itself
    # reads the fields; tests/test_trial_pipeline.py greps that it does).
    def __getitem__(self, key: str):
        return self.to_json()[key]

    def get(self, key: str, default=None):
        return self.to_json().get(key, default)


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


class VerdictKind(StrEnum):
    """A trial's verdict (the ledger's `verdict`, the `Verdict:` trailer)."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"


class TrialStatus(StrEnum):
    SUBMITTED = "submitted"  # written before any job runs: a crash loses nothing
    FINISHED = "finished"


# Written only once a trial is decided: a `submitted` row has none of these keys.
_DECIDED = frozenset({"verdict", "reason", "failure", "metrics", "log_tail", "margin", "noise", "violations",
                      "total_violation", "composite", "feasible", "wall", "finished_at", "rejected_ref"})


@dataclass
class TrialRecord(_Row):
    """A trial's ledger row: every field a reader uses by name; keys of other ledgers kept in `extra`.
    `to_json` writes the keys the untyped rows held: the decision's only once decided, optional ones
    only when set."""
    trial: int = 0
    status: str = TrialStatus.SUBMITTED
    run: str | None = None
    agent: str = "human"
    model: str = "none"
    hypothesis: str = ""
    commit: str | None = None
    parent_commit: str | None = None
    diff_stat: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    executor: str | None = None
    sandbox: str | None = None
    seed: int = 1
    host: str | None = None
    trial_dir: str | None = None
    started_at: str | None = None
    hashes: dict = field(default_factory=dict)
    # optional: written when set
    iteration: int | None = None
    knobs: dict | None = None
    workdir: str | None = None  # a parallel candidate's git worktree
    job_ids: dict | None = None  # stage -> job id, known before any waiting (re-attach)
    prepare_seconds: float | None = None
    confirm: dict | None = None  # the close call's second seed
    foundation: str | None = None  # `name sha256-prefix` of the model it fine-tuned from
    llm_calls: int | None = None
    tool_errors: int | None = None
    refused: int | None = None
    cached_tokens: int | None = None
    llm_seconds: float | None = None
    brief_chars: int | None = None
    parallel: int | None = None
    train_frames: int | None = None  # frames the commit trains on (data/train.xyz + data/added/), when data was added
    labels_spent: int | None = None  # reference calls the run's data actions had charged when it started
    audit_flags: list | None = None  # what mlipilot.code_flags found in the trained code (a reference calculator)
    train_threads: int | None = None  # torch threads training ran on (mlipilot.cores): composites differ at ~1e-7 between counts
    # the decision
    verdict: str | None = None
    reason: str | None = None
    failure: str | None = None  # a FailureKind when the trial failed
    metrics: dict | None = None  # the scorecard (ScoreResult.to_json's flat shape; ScoreResult.of(row) types it)
    log_tail: str | None = None
    margin: float | None = None
    noise: dict | None = None
    violations: dict | None = None
    composite: float | None = None
    feasible: bool = False
    total_violation: float | None = None
    wall: dict | None = None
    finished_at: str | None = None
    rejected_ref: str | None = None
    extra: dict = field(default_factory=dict)

    _OPTIONAL: ClassVar[frozenset] = frozenset({
        "iteration", "knobs", "workdir", "job_ids", "prepare_seconds", "confirm", "foundation", "llm_calls",
        "tool_errors", "refused", "cached_tokens", "llm_seconds", "brief_chars", "parallel", "train_frames",
        "labels_spent", "audit_flags", "train_threads"})

    def to_json(self) -> dict:
        decided = self.status != TrialStatus.SUBMITTED
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if (f.name in _DECIDED and not decided) or (f.name in self._OPTIONAL and v is None):
                continue
            out[f.name] = _plain(v)
        out.update(self.extra or {})
        return out


    @property
    def by_harness(self) -> bool:
        return self.agent == HARNESS_AGENT

    @property
    def interrupted(self) -> bool:
        """Ended by a stopped launcher, not by its experiment: no spent iteration, free to retry."""
        return self.failure == FailureKind.INTERRUPTED

    @property
    def decided(self) -> bool:
        return self.status != TrialStatus.SUBMITTED

    @property
    def accepted(self) -> bool:
        return self.verdict == VerdictKind.ACCEPTED


def interrupted(row: TrialRecord) -> bool:
    """Ended by a stopped launcher (see TrialRecord.interrupted)."""
    return row.interrupted


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
class NoiseEvent(_Row):
    """`mlipilot noise`: the spread of the incumbent's metrics over harness seeds."""
    EVENT: ClassVar[str] = "noise"
    incumbent_trial: int = 0
    commit: str | None = None
    seeds: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    sigma: dict = field(default_factory=dict)
    composite: list = field(default_factory=list)
    total_violation: list = field(default_factory=list)
    sigma_composite: float = 0.0
    sigma_violation: float = 0.0
    wall_s: float = 0.0
    at: str = field(default_factory=_now)


@dataclass
class DataActionEvent(_Row):
    """A data action (mlipilot.data_actions: sample, select, label, add, prune): what it made and what
    it cost; the action's own figures (pool, strategy, file ...) are kept in `extra`."""
    EVENT: ClassVar[str] = "data_action"
    action: str = ""
    at: str = field(default_factory=_now)
    id: int | None = None
    calls: int = 0  # reference calls charged
    cpu_seconds: float = 0.0
    charged_keys: list = field(default_factory=list)  # label cache keys paid for (a resumed job pays once)
    reserved: int = 0  # action "reserve": reference calls held for a label job until it settles
    reservation: int | None = None  # a label/settle row: the reservation (its `id`) it settles
    labelled: int | None = None  # add: the labelled set it added
    commit: str | None = None  # add/prune: the data commit
    summary: str | None = None
    what: str | None = None
    extra: dict = field(default_factory=dict)


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
