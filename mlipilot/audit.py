"""The audit, from git alone: accepted trials are the run branch's commits, rejected and failed
ones live under refs/mlipilot/rejected/<n>, and every trial commit carries MLIPilot-* trailers.
Works on a clone with no ledger (fetch `refs/mlipilot/*` too for --all)."""

from __future__ import annotations

from pathlib import Path

import git

from mlipilot.errors import MLIPilotError
from mlipilot.git_history import (
    REJECTED_PREFIX,
    TRAILER_METRICS,
    metric_trailer,
    read_validation_note,
)
from mlipilot.sanitize import single_line
from mlipilot.store import SCORE_FILE, Store

METRIC_TRAILERS = ("Composite", "Violation", *(metric_trailer(m) for m in TRAILER_METRICS))

# The same audit without MLIPilot installed:
GIT_ONE_LINER = ("git log --format='%h %(trailers:key=MLIPilot-Trial,valueonly,separator=) "
                 "%(trailers:key=MLIPilot-Verdict,valueonly,separator=) "
                 "%(trailers:key=MLIPilot-Composite,valueonly,separator=) %s'")


def trailers(commit: git.Commit) -> dict[str, str]:
    """MLIPilot-* trailers of a commit (the last paragraph of its message), without the prefix."""
    out = {}
    for line in commit.message.strip().split("\n\n")[-1].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("MLIPilot-"):  # older or hand-made commits may hold terminal controls
            out[key.removeprefix("MLIPilot-")] = single_line(value)
    return out


def _trial_parent(commit: git.Commit) -> git.Commit | None:
    """The commit a trial was judged against: below the data commits it carried (mlipilot.data_actions)."""
    from mlipilot.data_commits import is_data_commit

    parent = commit.parents[0] if commit.parents else None
    while parent is not None and is_data_commit(parent) and parent.parents:
        parent = parent.parents[0]
    return parent


def _entry(commit: git.Commit, ref: str) -> dict:
    t = trailers(commit)
    parent = _trial_parent(commit)
    metrics = {}
    for k in METRIC_TRAILERS:
        try:
            metrics[k.lower().replace("-", "_")] = float(t[k])
        except (KeyError, ValueError):
            pass
    return {"trial": int(t["Trial"]), "verdict": t.get("Verdict"), "hypothesis": t.get("Hypothesis", single_line(commit.summary)),
            "reason": t.get("Reason"), "agent": t.get("Agent"), "model": t.get("Model"),
            "feasible": t.get("Feasible") == "true", "metrics": metrics, "commit": commit.hexsha,
            "parent": parent.hexsha if parent else None, "ref": ref,
            "date": commit.committed_datetime.isoformat(), "flags": t.get("Flags"),
            "validation": read_validation_note(commit.repo, commit.hexsha)}


def open_repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise MLIPilotError(f"{path}: not a git repository — pass a run directory (or a clone of one)") from None


def audit(path: Path, include_rejected: bool = False, branch: str | None = None) -> list[dict]:
    """Trials in trial order; accepted ones carry metric deltas against their parent trial."""
    repo = open_repo(path)
    rev = branch or (repo.active_branch.name if not repo.head.is_detached else "HEAD")
    entries = []
    by_commit: dict[str, dict] = {}
    for commit in repo.iter_commits(rev):
        if "Trial" in trailers(commit) and "Verdict" in trailers(commit):
            e = _entry(commit, rev)
            entries.append(e)
            by_commit[e["commit"]] = e
    for e in entries:
        parent = by_commit.get(e["parent"])
        e["parent_trial"] = parent["trial"] if parent else None
        e["delta"] = {k: v - parent["metrics"][k] for k, v in e["metrics"].items()
                      if parent and k in parent["metrics"]} if parent else {}
    if include_rejected:
        for ref in repo.refs:
            if ref.path.startswith(REJECTED_PREFIX):
                entries.append(_entry(ref.commit, ref.path) | {"parent_trial": None, "delta": {}})
    return sorted(entries, key=lambda e: e["trial"])


LOG_TAIL_LINES = 20


def show(path: Path, trial: int, store: Path | None = None) -> dict:
    """One trial: its trailers, diff against its parent, and (when the store is at hand) the full
    scorecard and the sanitised tail of its training log."""
    repo = open_repo(path)
    for e in audit(path, include_rejected=True):
        if e["trial"] == trial:
            commit = repo.commit(e["commit"])
            # added training frames are listed by `show` as files and frame counts, not as xyz text
            e["diff"] = repo.git.diff(e["parent"], e["commit"], "--", ".", ":(exclude)data/added") if e["parent"] else ""
            e["trailers"] = trailers(commit)
            folder = Store(store).trial_dir(trial) if store is not None else None
            if folder is not None and (folder / SCORE_FILE).is_file():
                e["scorecard_json"] = str(folder / SCORE_FILE)
            if folder is not None and (folder / "train.log").is_file():  # written by jobs.train_job
                from mlipilot.sanitize import tail

                e["train_log"] = str(folder / "train.log")
                e["log_tail"] = tail((folder / "train.log").read_text(errors="replace"), LOG_TAIL_LINES)
            if store is not None:  # a close call trained twice: both runs
                row = next((r for r in Store(store).ledger.latest() if r.trial == trial), None)
                if row is not None and isinstance(row.metrics, dict):  # the full scorecard: per element, group and MD run
                    e["scored"] = row.metrics
                if row is not None and row.confirm:
                    e["seeds"] = [{"seed": row.seed, "composite": row.composite, "metrics": row.metrics}, row.confirm]
            return e
    raise MLIPilotError(f"no trial {trial} in {path} (fetch refs/mlipilot/* if it was rejected in a clone)")
