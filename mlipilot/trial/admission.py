"""What refuses a trial before anything is committed or trained, each as one line: a broken store,
protected files changed, a sandbox that cannot start, an edit training would not see, or a
configuration already trained (the agent loop's refusal, for any agent)."""

from __future__ import annotations

from pathlib import Path

from mlipilot.data_commits import pending_data_commits
from mlipilot.edits import effective_changes, repeat_of
from mlipilot.errors import MLIPilotError
from mlipilot.git_history import RunRepo
from mlipilot.integrity import editable_problem, integrity_problem, large_data_problem, seal_problem
from mlipilot.records import TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.sandbox import Sandbox
from mlipilot.store import Store


def check_branch(cfg: RunConfig, repo: RunRepo) -> None:
    branch = repo.current_branch()
    if branch != cfg.branch:
        raise MLIPilotError(f"{cfg.root}: HEAD is on {branch or 'a detached commit'}, not the run branch "
                            f"{cfg.branch} — run `git checkout {cfg.branch}`")


def store_problem(cfg: RunConfig, store: Store) -> str | None:
    return store.ledger.verify() or seal_problem(cfg.root, store.root)


def preflight(cfg: RunConfig, store: Store, sandbox: Sandbox, root: Path, has_trials: bool) -> None:
    """Raise the first reason `root` (the run or a parallel candidate's worktree) may not be trained."""
    for problem in (store.ledger.verify(), seal_problem(cfg.root, store.root)):
        if problem:
            raise MLIPilotError(f"store integrity: {problem}")
    problem = integrity_problem(root, store.root, cfg.editable)
    if problem:
        raise MLIPilotError(f"{root}: {problem} — only {', '.join(cfg.editable)} may change; restore the "
                            "rest with `git checkout -- <file>` (and delete added files) before a trial")
    problem = editable_problem(root, cfg.editable) or large_data_problem(cfg.root)  # large files: the run's own
    if problem:
        raise MLIPilotError(f"{root}: {problem}")
    problem = sandbox.problem()
    if problem:
        raise MLIPilotError(f"{cfg.root / 'mlipilot.toml'}: sandbox {sandbox.kind} cannot start: {problem}")
    if has_trials and not effective_changes(root, cfg.editable) and not pending_data_commits(root):
        raise MLIPilotError(f"no change under {', '.join(cfg.editable)} that training would see (comments, "
                            "whitespace and the seed, which the harness sets, do not count) — edit an option "
                            "or train.py first")


def experiment_refusal(root: Path, editable: tuple[str, ...], trials: list[TrialRecord]) -> str | None:
    """Why an agent's run_experiment must not train now (nothing changed, or a repeat), else None."""
    if pending_data_commits(root):  # new training data: a new experiment whatever the options
        return None
    if trials and not effective_changes(root, editable):
        return ("nothing under train/ changed since the best trial in a way training would see (comments, "
                "whitespace and the seed, which the harness sets, do not count); change an option first")
    n = repeat_of(root, editable, [t for t in trials if not t.interrupted])
    if n is not None:
        r = next(t for t in trials if t.trial == n)
        m = r.metrics or {}
        got = ", ".join(f"{k} {m[k]:.4g}" for k in ("energy_rmse", "force_rmse") if isinstance(m.get(k), (int, float)))
        return (f"this exact configuration was already trained in trial {n} ({r.verdict}"
                + (f"; {got}" if got else "") + "); training it again only measures seed noise. "
                "Try a configuration not in the table of configurations tried")
    return None
