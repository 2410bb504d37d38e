"""The agent loop: brief -> agent iteration (edits through tools) -> harness trial -> repeat,
until a budget is spent or the agent finishes. State lives in the ledger and git, so a killed
run resumes where it stopped: the interrupted trial is recorded as failed, never repeated or lost."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import Callable

from mlipilot.agents.base import Agent, IterationLimits
from mlipilot.agents.config_edits import knob_values
from mlipilot.context import build_brief
from mlipilot.git_history import RunRepo
from mlipilot.run_config import RunConfig
from mlipilot.trial import Trial
from mlipilot.workspace_tools import WorkspaceTools

EXIT_STATUSES = ("finished", "budget_iterations", "budget_tokens", "budget_cost", "budget_wall", "llm_error",
                 "interrupted", "error")


@dataclass
class Budget:
    iterations: int = 10
    llm_calls_per_iteration: int = 12
    max_tokens: int | None = None
    max_cost: float | None = None
    max_wall_min: float | None = None
    parallel: int = 1  # candidates trained at once, each in its own git worktree


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def spent(rows: list[dict]) -> dict:
    """Iterations, tokens and cost so far, from trial rows (latest per trial) and iteration events."""
    latest: dict[int, dict] = {}
    events = []
    for r in rows:
        if "trial" in r:
            latest[int(r["trial"])] = r
        elif r.get("event") == "iteration":
            events.append(r)
    counted = list(latest.values()) + events
    cost: float | None = 0.0
    for r in counted:
        c = r.get("cost", 0.0)
        cost = None if c is None or cost is None else cost + c
    return {"iterations": len(counted),
            "tokens": sum(int(r.get("tokens_in") or 0) + int(r.get("tokens_out") or 0) for r in counted),
            "cost": cost}


def run_agent(cfg: RunConfig, agent: Agent, budget: Budget, progress: Callable[[str], None] = print) -> str:
    trial = Trial(cfg, progress=progress)
    trial.recover_interrupted()
    agent.progress = progress
    tools = WorkspaceTools(cfg)
    ledger = trial.ledger
    repo = RunRepo(cfg.root)
    t_start = time.time()
    ledger.append({"event": "run_start", "agent": agent.name, "model": agent.model, "budget": asdict(budget),
                   "at": _now()})
    status = "budget_iterations"
    try:
        while True:
            used = spent(ledger.rows())
            if used["iterations"] >= budget.iterations:
                status = "budget_iterations"
                break
            if budget.max_tokens is not None and used["tokens"] >= budget.max_tokens:
                status = "budget_tokens"
                break
            if budget.max_cost is not None and used["cost"] is not None and used["cost"] >= budget.max_cost:
                status = "budget_cost"
                break
            if budget.max_wall_min is not None and time.time() - t_start >= budget.max_wall_min * 60:
                status = "budget_wall"
                break
            it = used["iterations"] + 1
            if budget.parallel > 1:
                _parallel_round(cfg, agent, budget, trial, min(budget.parallel, budget.iterations - used["iterations"]),
                                used, progress)
                continue
            brief = build_brief(cfg, tools, it, budget.iterations)
            limits = IterationLimits(
                max_llm_calls=budget.llm_calls_per_iteration,
                max_tokens_left=None if budget.max_tokens is None else budget.max_tokens - used["tokens"],
                max_cost_left=None if budget.max_cost is None or used["cost"] is None else budget.max_cost - used["cost"])
            result = agent.run_iteration(tools, brief, limits)
            u = result.usage
            usage = {"tokens_in": u.tokens_in, "tokens_out": u.tokens_out, "cost": u.cost}
            usage_extra = {"llm_calls": u.llm_calls, "tool_errors": u.tool_errors, "llm_seconds": round(u.llm_seconds, 2),
                           "iteration": it, "brief_chars": len(brief)}
            if result.action == "experiment":
                record = trial.run(result.text, agent=agent.name, model=agent.model, **usage,
                                   extra={**usage_extra, "knobs": knob_values(tools)})
                best = ledger.incumbent()
                progress(f"iteration {it}/{budget.iterations}: trial {record['trial']} {record['verdict']}"
                         f" | composite {_fmt(record.get('composite'))} | best {_fmt(best and best.get('composite'))}"
                         f" (trial {best and best['trial']}) | tokens {u.tokens_in} in / {u.tokens_out} out"
                         f" | tool errors {u.tool_errors}")
                continue
            repo.repo.git.checkout("--", *cfg.editable)  # edits without an experiment are discarded
            repo.repo.git.clean("-fdxq", "--", *cfg.editable)
            ledger.append({"event": "iteration", "outcome": result.action, "text": result.text,
                           "exit_status": result.exit_status, "agent": agent.name, "model": agent.model,
                           **usage, **usage_extra, "at": _now()})
            progress(f"iteration {it}/{budget.iterations}: {result.action} — {result.text[:200]}"
                     f" | tokens {u.tokens_in} in / {u.tokens_out} out | tool errors {u.tool_errors}")
            if result.action == "finish":
                status = "finished"
                break
            if result.exit_status in ("llm_error", "budget_tokens", "budget_cost"):
                status = result.exit_status
                break
            # budget_llm_calls: the iteration is spent without an experiment; go on
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException as e:  # the run did not end by a budget: say so, whatever stopped it
        status = "error"
        ledger.append({"event": "run_error", "error": f"{type(e).__name__}: {e}"[:2000], "at": _now()})
        raise
    finally:
        used = spent(ledger.rows())
        ledger.append({"event": "run_end", "exit_status": status, "agent": agent.name, "model": agent.model,
                       "iterations": used["iterations"], "tokens": used["tokens"], "cost": used["cost"],
                       "wall_s": round(time.time() - t_start, 1), "at": _now()})
        progress(f"run ended: {status} after {used['iterations']} iterations, {used['tokens']} tokens")
    return status


def _parallel_round(cfg: RunConfig, agent: Agent, budget: Budget, trial: Trial, k: int, used: dict,
                    progress: Callable[[str], None]) -> None:
    """K proposals, each edited in its own worktree and its training job submitted at once; then the
    verdicts, in order, each against the incumbent at its decision time."""
    repo = RunRepo(cfg.root)
    pending = []
    for i in range(k):
        it = used["iterations"] + i + 1
        workdir = repo.add_worktree(cfg.store / "worktrees" / f"iteration-{it}")
        wcfg = dataclasses.replace(cfg, root=workdir)
        tools = WorkspaceTools(wcfg)
        result = agent.run_iteration(tools, build_brief(wcfg, tools, it, budget.iterations),
                                     IterationLimits(max_llm_calls=budget.llm_calls_per_iteration))
        u = result.usage
        usage = {"tokens_in": u.tokens_in, "tokens_out": u.tokens_out, "cost": u.cost}
        extra = {"llm_calls": u.llm_calls, "tool_errors": u.tool_errors, "llm_seconds": round(u.llm_seconds, 2),
                 "iteration": it, "parallel": k}
        if result.action != "experiment":
            repo.remove_worktree(workdir)
            trial.ledger.append({"event": "iteration", "outcome": result.action, "text": result.text,
                                 "exit_status": result.exit_status, "agent": agent.name, "model": agent.model,
                                 **usage, **extra, "at": _now()})
            continue
        pending.append(trial.start_in_worktree(workdir, result.text, agent=agent.name, model=agent.model,
                                               **usage, extra={**extra, "knobs": knob_values(tools)}))
    for record, job in pending:
        done = trial.finish_parallel(record, job)
        progress(f"iteration {done['iteration']}/{budget.iterations} (parallel {k}): trial {done['trial']} "
                 f"{done['verdict']} | composite {_fmt(done.get('composite'))}")


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"
