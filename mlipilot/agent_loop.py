"""The agent loop: the harness measures the unedited baseline, then brief -> agent iteration
(edits through tools) -> harness trial -> repeat, until a budget is spent or the agent finishes.

One code path for serial and parallel: a round proposes K candidates (K = 1 edits the run
directory itself; K > 1 gives each its own git worktree and trains them at once), then decides
them in order. State lives in the ledger and git, so a killed run resumes where it stopped: the
interrupted trial's job is re-attached to where it still runs (local or Slurm), else the trial is
recorded as interrupted: not a spent iteration, and the agent may try it again."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from typing import Callable

from mlipilot.data_commits import discard_pending
from mlipilot.agents.base import Agent, IterationLimits, IterationResult
from mlipilot.agents.config_edits import knob_values
from mlipilot.context import build_brief
from mlipilot.cores import sharing
from mlipilot.edits import effective_changes
from mlipilot.errors import MLIPilotError
from mlipilot.git_history import RunRepo
from mlipilot.ledger import events_of, latest_trials
from mlipilot.records import (
    COMPLETED,
    HARNESS_AGENT,
    RUN_ENDING,
    ExitStatus,
    IterationEvent,
    Outcome,
    RunEvent,
    Spent,
    TrialRecord,
)
from mlipilot.run_config import RunConfig
from mlipilot.run_lock import run_lock
from mlipilot.sanitize import single_line
from mlipilot.trial import TrialRunner
from mlipilot.workspace_tools import WorkspaceTools

EXIT_STATUSES = tuple(ExitStatus)
BASELINE_HYPOTHESIS = "baseline: the shipped workspace, unedited (measured by the harness before the agent's first edit)"


@dataclass
class Budget:
    iterations: int = 10
    llm_calls_per_iteration: int = 12
    max_tokens: int | None = None
    max_cost: float | None = None
    max_wall_min: float | None = None
    parallel: int = 1  # candidates trained at once, each in its own git worktree

    def exhausted(self, used: Spent, elapsed_s: float) -> ExitStatus | None:
        if used.iterations >= self.iterations:
            return ExitStatus.BUDGET_ITERATIONS
        if self.max_tokens is not None and used.tokens >= self.max_tokens:
            return ExitStatus.BUDGET_TOKENS
        if self.max_cost is not None and used.cost is not None and used.cost >= self.max_cost:
            return ExitStatus.BUDGET_COST
        if self.max_wall_min is not None and elapsed_s >= self.max_wall_min * 60:
            return ExitStatus.BUDGET_WALL
        return None

    def limits(self, used: Spent) -> IterationLimits:
        """What one iteration may still spend, given what the run (and this round) used."""
        return IterationLimits(
            max_llm_calls=self.llm_calls_per_iteration,
            max_tokens_left=None if self.max_tokens is None else self.max_tokens - used.tokens,
            max_cost_left=None if self.max_cost is None or used.cost is None else self.max_cost - used.cost)


def spent(rows: list[dict]) -> Spent:
    """Agent iterations, tokens and cost so far: trials (latest record each; the harness's baseline
    is not an agent iteration, nor is a trial a stopped launcher interrupted) and iterations that
    ended without an experiment. `rows`: the ledger's rows as read (Ledger.rows())."""
    counted: list[TrialRecord | IterationEvent] = [t for t in map(TrialRecord.from_json, latest_trials(rows))
                                                   if not t.by_harness and not t.interrupted]
    counted += events_of(rows, IterationEvent)
    total = Spent()
    for r in counted:
        total += Spent(1, int(r.tokens_in or 0) + int(r.tokens_out or 0), r.cost)
    return total


def run_agent(cfg: RunConfig, agent: Agent, budget: Budget, progress: Callable[[str], None] = print,
              trial: TrialRunner | None = None) -> str:
    """`trial`: the TrialRunner to use (tests pass one with a fake pipeline)."""
    if budget.parallel > 1 and cfg.data is not None and cfg.data.enabled:
        # a data commit belongs to the one trial that follows it (a reject reverts both); K candidates
        # in worktrees would share, or race for, the run's pending data
        raise MLIPilotError(f"{cfg.root / 'mlipilot.toml'}: [data] is set — data actions need serial trials: "
                            "run with --parallel 1 (or remove [data] for a knobs-only parallel run)")
    with run_lock(cfg.store), sharing(budget.parallel):  # one launcher per run; K trainings split the cores
        return _run_agent(cfg, agent, budget, progress, trial)


def _run_agent(cfg: RunConfig, agent: Agent, budget: Budget, progress: Callable[[str], None],
               trial: TrialRunner | None = None) -> str:
    trial = trial or TrialRunner(cfg, progress=progress)
    trial.recover_interrupted()
    agent.progress = progress
    ledger = trial.ledger
    t_start = time.time()
    ledger.append(RunEvent("run_start", agent.name, agent.model, budget=asdict(budget)))
    status = ExitStatus.BUDGET_ITERATIONS
    try:
        if not ledger.latest():
            if effective_changes(cfg.root, cfg.editable):
                raise MLIPilotError(f"{cfg.root}: {', '.join(effective_changes(cfg.root, cfg.editable))} edited before "
                                    "the baseline — the harness measures the unedited workspace first: test your edit "
                                    "with `mlipilot trial -m \"...\"`, or discard it with `git checkout -- train/`")
            progress("iteration 0: the harness measures the baseline (the shipped workspace, unedited)")
            trial.run(BASELINE_HYPOTHESIS, agent=HARNESS_AGENT, model="none",
                      extra={"iteration": 0, "knobs": knob_values(WorkspaceTools(cfg, trial.store))})
        while True:
            used = spent(ledger.rows())
            stop = budget.exhausted(used, time.time() - t_start)
            if stop:
                status = stop
                break
            stop = _round(cfg, agent, budget, trial, min(budget.parallel, budget.iterations - used.iterations),
                          used, progress)
            if stop:
                status = stop
                break
        if status in COMPLETED and (nothing := nothing_scored(ledger.latest())) is not None:  # all trials failed
            status = ExitStatus.ERROR
            ledger.append(RunEvent("run_error", error=nothing))
            progress(f"run FAILED: {nothing}")
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
        raise
    except BaseException as e:  # the run did not end by a budget: say so, whatever stopped it
        status = ExitStatus.ERROR
        ledger.append(RunEvent("run_error", error=f"{type(e).__name__}: {e}"[:2000]))
        raise
    finally:
        used = spent(ledger.rows())
        ledger.append(RunEvent("run_end", agent.name, agent.model, exit_status=status, iterations=used.iterations,
                               tokens=used.tokens, cost=used.cost, wall_s=round(time.time() - t_start, 1)))
        progress(f"run ended: {status} after {used.iterations} iterations, {used.tokens} tokens")
    return str(status)


def _round(cfg: RunConfig, agent: Agent, budget: Budget, trial: TrialRunner, k: int, used: Spent,
           progress: Callable[[str], None]) -> ExitStatus | None:
    """K proposals, then their verdicts in order, each against the incumbent at its decision time.
    Returns the status that ends the run (finish, an LLM error, a spent budget), if one did."""
    repo = RunRepo(cfg.root)
    pending = []
    stop = None
    for i in range(k):
        it = used.iterations + 1  # `used` already counts this round's earlier proposals
        workdir = cfg.root if k == 1 else repo.add_worktree(trial.store.worktree(it))
        wcfg = cfg if k == 1 else dataclasses.replace(cfg, root=workdir)
        tools = WorkspaceTools(wcfg, trial.store)
        brief = build_brief(wcfg, tools, it, budget.iterations)
        result = agent.run_iteration(tools, brief, dataclasses.replace(budget.limits(used), iteration=it))
        u = result.usage
        usage = {"tokens_in": u.tokens_in, "tokens_out": u.tokens_out, "cost": u.cost}
        extra = {"llm_calls": u.llm_calls, "tool_errors": u.tool_errors, "refused": u.refused,
                 "cached_tokens": u.cached_tokens, "llm_seconds": round(u.llm_seconds, 2), "iteration": it,
                 "brief_chars": len(brief), **({"parallel": k} if k > 1 else {})}
        # an LLM agent's calls and the refused ones with why (the next brief names them); none for scripted agents
        calls = {key: list(v) for key, v in (("calls", u.calls), ("refused_calls", u.refused_calls)) if v}
        used += Spent(1, u.tokens_in + u.tokens_out, u.cost)
        if result.action == Outcome.EXPERIMENT:
            refusal = tools.refusal()  # any agent, not only the LLM's tool loop, is held to it
            if refusal:
                result = IterationResult(Outcome.REFUSED, refusal, u)
                extra["refused"] = u.refused + 1
        if result.action == Outcome.EXPERIMENT:
            kw = dict(agent=agent.name, model=agent.model, **usage,
                      extra={**extra, "knobs": knob_values(tools), **calls})
            if k == 1:
                record = trial.run(result.text, **kw)
                best = trial.ledger.incumbent()
                progress(f"iteration {it}/{budget.iterations}: trial {record.trial} {verdict_words(record)}"
                         f" | composite {_fmt(record.composite)} | best "
                         + (f"{_fmt(best.composite)} (trial {best.trial})" if best else "- (no model scored yet)")
                         + f" | tokens {u.tokens_in} in / {u.tokens_out} out | tool errors {u.tool_errors}")
            else:
                pending.append(trial.start_in_worktree(workdir, result.text, **kw))
            continue
        if k == 1:  # edits without an experiment are discarded
            repo.repo.git.checkout("--", *cfg.editable)
            repo.repo.git.clean("-fdxq", "--", *cfg.editable)
            discard_pending(cfg.root, cfg.store)  # data commits no trial followed go the same way
        else:
            repo.remove_worktree(workdir)
        event = IterationEvent(result.action, result.text, result.exit_status, agent.name, agent.model,
                               **usage, **extra)
        trial.ledger.append({**event.to_json(), **calls} if calls else event)
        progress(f"iteration {it}/{budget.iterations}: {result.action} — {single_line(result.text, 200)}"
                 f" | tokens {u.tokens_in} in / {u.tokens_out} out | tool errors {u.tool_errors}")
        if result.action == Outcome.FINISH:
            stop = ExitStatus.FINISHED
        elif result.exit_status in RUN_ENDING:
            stop = ExitStatus(result.exit_status)
        if stop:
            break  # no more proposals this round; those already training are still decided
    for record, job in pending:
        done = trial.finish_parallel(record, job)
        progress(f"iteration {done.iteration}/{budget.iterations} (parallel {k}): trial {done.trial} "
                 f"{verdict_words(done)} | composite {_fmt(done.composite)}")
    return stop


def verdict_words(record: TrialRecord) -> str:
    """A trial's verdict for its progress line; accepted while infeasible says why (the run keeps the model with
    the least total constraint violation until one is feasible)."""
    if record.verdict == "accepted" and not record.feasible and record.total_violation is not None:
        return (f"accepted while infeasible (least total violation so far, {record.total_violation:.3g}: the run is "
                "still infeasible)")
    return str(record.verdict)


def nothing_scored(trials: list[TrialRecord]) -> str | None:
    """Why a run produced no model (every trial failed), or None when one was scored and accepted."""
    if not trials or any(t.accepted for t in trials):
        return None
    failed = [t for t in trials if t.verdict == "failed"]
    if not failed:
        return None
    last = failed[-1]
    return (f"every trial failed ({len(failed)} of {len(trials)}), no model was scored — the last, trial {last.trial}: "
            f"{single_line(str(last.reason or ''), 240)}; see `mlipilot show {last.trial}`, fix train/train.py and run "
            "again")


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"
