"""What a trial leaves behind: its commit (the edit, with trailers once decided), the run branch
kept or reverted, and its ledger rows (`submitted` before any job, the decision after).

Data actions add a commit of their own before the experiment's: `commit_data` makes it on the
trial's repo before `begin`, and `begin(parent=...)` records the parent from before it, so a
rejected trial's `reject` (a reset to that parent) reverts both."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from pathlib import Path

import mlipilot
from mlipilot import code_flags
from mlipilot.data_commits import frames_at, sync_data_hashes
from mlipilot.git_history import TRAILER_METRICS, RunRepo, format_message, metric_trailer
from mlipilot.integrity import sha256_file
from mlipilot.records import DataActionEvent, FailureKind, TrialRecord, TrialStatus
from mlipilot.run_config import RunConfig
from mlipilot.sanitize import sanitize, strip_controls
from mlipilot.scorecard.spec import ScorecardSpec
from mlipilot.scorecard.verdict import ACCEPTED, FAILED
from mlipilot.store import Store
from mlipilot.trial.decider import INTERRUPTED_REASON, Decided, failure_kind
from mlipilot.trial.stages import PipelineResult


def harness_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(mlipilot.__file__).parent.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def text(s: str) -> str:
    """Text as git and terminals take it: no lone surrogates, NUL bytes or terminal controls (a
    hypothesis with a carriage return or an escape sequence could rewrite what `mlipilot log` shows)."""
    return strip_controls(s)


class Recorder:
    def __init__(self, cfg: RunConfig, store: Store, repo: RunRepo, spec: ScorecardSpec, sandbox_kind: str,
                 progress=print):
        self.cfg, self.store, self.repo, self.spec = cfg, store, repo, spec
        self.sandbox_kind, self.progress = str(sandbox_kind), progress
        self.ledger = store.ledger

    def repo_of(self, row: TrialRecord) -> RunRepo:
        return RunRepo(Path(row.workdir)) if row.workdir else self.repo

    # -- before any job ---------------------------------------------------------------------------
    def commit_data(self, repo: RunRepo, paths: tuple[str, ...], message: str) -> str:
        """A data action's commit (new training data) before the experiment's; pass the head from
        before it to `begin(parent=...)` so that a rejected trial reverts both."""
        return repo.commit_paths(paths, format_message(message, "", {}))

    def begin(self, hypothesis: str, agent: str, model: str, tokens_in: int, tokens_out: int, cost: float | None,
              extra: dict, repo: RunRepo, parent: str | None = None) -> TrialRecord:
        """Commit the edit and write the trial's `submitted` row."""
        cfg = self.cfg
        n = self.ledger.next_trial_id()
        trial_dir = self.store.trial_dir(n)
        trial_dir.mkdir(parents=True, exist_ok=True)
        parent = parent or repo.head()
        agent, model = text(agent), text(model)
        flags = code_flags.scan_tree(repo.root, cfg.editable)
        base_trailers = {"Trial": n, "Hypothesis": hypothesis, "Agent": agent, "Model": model,
                         **({"Flags": code_flags.trailer(flags)} if flags else {})}
        commit = repo.commit_paths(cfg.editable, format_message(hypothesis, "", base_trailers))
        record = TrialRecord.from_json({
            "trial": n, "status": TrialStatus.SUBMITTED, "run": cfg.name, "parent_commit": parent,
            "commit": commit, "diff_stat": repo.diff_stat(parent, commit), "hypothesis": sanitize(hypothesis, 2000),
            "agent": agent, "model": model, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost,
            "executor": cfg.executor, "sandbox": self.sandbox_kind, "seed": cfg.noise.base_seed,
            "host": socket.gethostname(), "trial_dir": str(trial_dir), "started_at": now(),
            "hashes": {"scorecard": self.spec.sha256, "holdout": sha256_file(self.store.holdout),
                       "harness": harness_hash(), "harness_version": mlipilot.__version__},
            **(extra or {}), **self._data_state(repo, commit), **({"audit_flags": flags} if flags else {})})
        self.ledger.append(record)
        self.progress(f"trial {n}: {hypothesis.splitlines()[0][:80]}  [{record.diff_stat}]")
        if flags:
            self.progress(f"  flagged for the audit: {code_flags.trailer(flags)}")
        return record

    def _data_state(self, repo: RunRepo, commit: str) -> dict:
        """What the trial trains on, once data actions added any: the frames and the labels paid so far."""
        events = self.ledger.events(DataActionEvent)
        if not events:
            return {}
        return {"train_frames": sum(frames_at(repo.root, commit).values()),
                "labels_spent": sum(int(e.calls or 0) for e in events)}

    def job_submitted(self, record: TrialRecord, stage: str, job_id: str, outcome: PipelineResult) -> None:
        """A job id, recorded before any waiting, so a restarted launcher can re-attach."""
        if outcome.prepare_seconds is not None:
            record.prepare_seconds = outcome.prepare_seconds
        record.job_ids = {**(record.job_ids or {}), stage: job_id}
        self.ledger.append(record)

    # -- after the verdict ------------------------------------------------------------------------
    def _trailers(self, record: TrialRecord, d: Decided) -> dict:
        verdict, candidate, outcome, incumbent, seeds = d.verdict, d.candidate, d.outcome, d.incumbent, d.seeds
        trailers = {"Trial": record.trial, "Hypothesis": record.hypothesis, "Agent": record.agent,
                    "Model": record.model, "Verdict": verdict.verdict, "Reason": verdict.reason,
                    "Parent-Trial": incumbent.trial if incumbent else None, "Seed": ",".join(map(str, seeds)),
                    "Margin": None if verdict.margin is None else f"{verdict.margin:.4g}"}
        if candidate:
            trailers.update({"Composite": f"{candidate.composite:.6g}", "Feasible": str(candidate.feasible).lower(),
                             "Violation": f"{candidate.total_violation:.6g}"})
            metrics = outcome.score.metrics if outcome.score else {}
            for m in TRAILER_METRICS:
                if metrics.get(m) is not None:
                    trailers[metric_trailer(m)] = f"{metrics[m]:.6g}"
        trailers["Scorecard-SHA256"] = self.spec.sha256[:16]
        trailers["Sandbox"] = self.sandbox_kind
        if record.foundation:
            trailers["Foundation"] = record.foundation
        if record.audit_flags:
            trailers["Flags"] = code_flags.trailer(record.audit_flags)
        return trailers

    def finish(self, record: TrialRecord, d: Decided) -> TrialRecord:
        """Amend the commit's message with the trailers, keep or revert it, write the decided row: once,
        from the finished decision."""
        cfg, n = self.cfg, record.trial
        verdict, candidate, outcome, noise, integrity = d.verdict, d.candidate, d.outcome, d.noise, d.integrity
        if d.confirm is not None:
            record.confirm = d.confirm
        if d.foundation:
            record.foundation = d.foundation
        repo = self.repo_of(record)
        message = format_message(record.hypothesis, "", self._trailers(record, d))
        final_commit = repo.amend_message(message)
        rejected_ref = None
        if record.workdir:
            if verdict.verdict == ACCEPTED:
                final_commit = self.repo.adopt(cfg.branch, final_commit, message)
            else:
                rejected_ref = self.repo.keep_rejected(n, final_commit)
            self.repo.remove_worktree(Path(record.workdir))
        elif verdict.verdict != ACCEPTED:
            rejected_ref = self.repo.reject(n, record.parent_commit, cfg.editable)
            sync_data_hashes(cfg.store, cfg.root)  # its data commits went with it
        record.status = TrialStatus.FINISHED
        record.commit, record.rejected_ref = final_commit, rejected_ref
        record.verdict, record.reason = verdict.verdict, verdict.reason
        record.failure = failure_kind(verdict, outcome, integrity)
        record.metrics, record.job_ids, record.log_tail = outcome.metrics, outcome.job_ids, outcome.log_tail
        record.margin, record.noise = verdict.margin, (noise.__dict__ if noise else None)
        record.violations = candidate.violations if candidate else None
        record.total_violation = candidate.total_violation if candidate else None
        record.composite = candidate.composite if candidate else None
        record.feasible = candidate.feasible if candidate else False
        record.wall = {**outcome.wall, "total": d.wall_total}
        if outcome.train_threads is not None:
            record.train_threads = outcome.train_threads
        record.finished_at = now()
        self.ledger.append(record)
        return record

    def interrupted(self, row: TrialRecord) -> None:
        """A trial whose jobs are gone: its commit kept under the rejected ref, git repaired, recorded
        `failed`/interrupted (not a spent iteration)."""
        if row.workdir:
            self.repo.keep_rejected(row.trial, row.commit)
            self.repo.remove_worktree(Path(row.workdir))
        else:
            self.repo.move_head_to_rejected(row.trial, row.commit, row.parent_commit, self.cfg.editable)
            sync_data_hashes(self.cfg.store, self.cfg.root)
        row.status, row.verdict, row.finished_at = TrialStatus.FINISHED, FAILED, now()
        row.failure, row.reason = str(FailureKind.INTERRUPTED), INTERRUPTED_REASON
        self.ledger.append(row)
