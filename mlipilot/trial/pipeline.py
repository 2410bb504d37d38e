"""Runs a trial's stages as jobs: submit (or re-attach to what a stopped launcher submitted), wait,
stream the log, read the result, stop at the first failure. Written once for every stage.

`Pipeline` is the seam the trial runs through: `JobPipeline` runs real jobs; a test passes one that
returns canned scores (tests/fake_pipeline.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Callable, Protocol

from mlipilot import jobs
from mlipilot.executors import get_executor
from mlipilot.executors.base import submitting_from
from mlipilot.records import FailureKind, TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.store import Store
from mlipilot.trial.stages import STAGES, JobEnv, PipelineResult, Stage, StageContext

# called with (stage, job id, outcome) once a job is submitted, before any waiting (re-attach)
OnSubmit = Callable[[str, str, PipelineResult], None]


class Pipeline(Protocol):
    def run(self, commit: str, seed: int, trial_dir: Path, attach: dict | None = None,
            on_submit: OnSubmit | None = None) -> PipelineResult:
        """Every stage in order for `commit` trained with harness seed `seed` in `trial_dir`. `attach`
        maps a stage to a job id (a stopped launcher's), a job object (submitted by `start`) or the
        JobFailed `start` met."""

    def start(self, commit: str, seed: int, trial_dir: Path, on_submit: OnSubmit | None = None) -> object:
        """Submit the first stage without waiting (parallel candidates): its job, or the JobFailed."""

    def can_attach(self, row: TrialRecord) -> bool:
        """Whether a stopped launcher's jobs for `row` can still be re-attached to."""

    def stop_leftovers(self, row: TrialRecord, folder: Path | None = None) -> None:
        """Stop what a stopped launcher left running for `row` (or in `folder`)."""


class JobPipeline:
    def __init__(self, cfg: RunConfig, store: Store, env: JobEnv, progress: Callable[[str], None] = print,
                 stages: tuple[Stage, ...] = STAGES):
        self.cfg, self.store, self.env, self.progress, self.stages = cfg, store, env, progress, stages

    def _ctx(self, commit: str, seed: int, trial_dir: Path, attach: dict) -> StageContext:
        outcome = PipelineResult(job_ids={k: str(getattr(v, "job_id", v)) for k, v in attach.items()})
        return StageContext(self.cfg, self.store, self.env, commit, seed, Path(trial_dir), outcome, self.progress)

    def start(self, commit: str, seed: int, trial_dir: Path, on_submit: OnSubmit | None = None) -> object:
        ctx = self._ctx(commit, seed, trial_dir, {})
        try:
            return self._submit(self.stages[0], ctx, {}, on_submit)
        except jobs.JobFailed as e:
            return e  # recorded as this trial's failure when its verdict comes

    def run(self, commit: str, seed: int, trial_dir: Path, attach: dict | None = None,
            on_submit: OnSubmit | None = None) -> PipelineResult:
        attach = attach or {}
        ctx = self._ctx(commit, seed, trial_dir, attach)
        out = ctx.outcome
        for stage in self.stages:
            if stage.announce:
                self.progress(stage.announce)
            submitted, job = time.time(), None
            poll = stage.poll(ctx) if stage.poll else None
            try:
                if isinstance(attach.get(stage.name), jobs.JobFailed):  # a parallel candidate that never started
                    raise attach[stage.name]
                result = stage.inline(ctx) if stage.inline and stage.name not in attach else None
                if result is None:
                    job = self._submit(stage, ctx, attach, on_submit)
                    out.job_ids[stage.name] = str(job.job_id)
                    if stage.started:
                        self.progress(stage.started(ctx, job))
                    result = jobs.wait(job, on_poll=poll)
            except jobs.JobFailed as e:
                limit = (f" (its limit, {stage.limit_option} = {stage.timeout_min(self.cfg):g})"
                         if stage.limit_option and e.kind == FailureKind.TIMEOUT else "")
                out.error = f"{stage.failed}{limit}: {e}"
                out.failure = e.kind or stage.failure
                stage.on_fail(ctx, e, job, submitted)
                return out
            finally:
                if stage.cleanup:
                    stage.cleanup(ctx)
            if poll:
                poll()
            stage.take(ctx, result, submitted)
            if stage.check and (problem := stage.check(ctx)):
                out.error = out.fatal = problem
                out.failure = FailureKind.INTEGRITY
                return out
        return out

    def _submit(self, stage: Stage, ctx: StageContext, attach: dict, on_submit: OnSubmit | None):
        """Submit `stage`'s job, or re-attach to the one a stopped launcher (or `start`) submitted."""
        folder = ctx.trial_dir / "submitit"
        if stage.name in attach:
            if not isinstance(attach[stage.name], str):  # a job object submitted earlier by this launcher
                return attach[stage.name]
            return jobs.attach(self.cfg.executor, folder, attach[stage.name])
        if stage.prepare:
            stage.prepare(ctx)
        try:
            # the job process starts in the trial folder: no workspace code in its working directory
            with submitting_from(ctx.trial_dir):
                job = jobs.make_executor(self.cfg.executor, folder, stage.timeout_min(self.cfg), self.cfg.slurm,
                                         stage.name).submit(stage.job, *stage.args(ctx))
        except Exception as e:  # e.g. sbatch refusing the request: the trial fails, the launcher goes on
            raise jobs.JobFailed(f"{stage.name} job submission failed: {type(e).__name__}: {str(e).strip()[-400:]}",
                                 kind=FailureKind.SUBMIT_REFUSED) from None
        if on_submit:  # known before any waiting, so a restarted launcher can re-attach
            on_submit(stage.name, str(job.job_id), ctx.outcome)
        return job

    # -- crash recovery -----------------------------------------------------------------------------
    def can_attach(self, row: TrialRecord) -> bool:
        return cfg_can_attach(self.cfg, row)

    def stop_leftovers(self, row: TrialRecord | None, folder: Path | None = None) -> None:
        """Stop whatever a stopped launcher left running for this trial (its jobs, replicates,
        confirmations), so nothing competes with the next trial for the cores."""
        if row is not None:
            kind = get_executor(self.cfg.executor)
            if kind.can_reattach and row.executor == self.cfg.executor and row.host in (None, socket.gethostname()):
                for stage, job_id in (row.job_ids or {}).items() if row.trial_dir else ():
                    with contextlib.suppress(Exception):
                        jobs.attach(self.cfg.executor, Path(row.trial_dir) / "submitit", str(job_id)).cancel(check=False)
            folder = Path(row.trial_dir) if row.trial_dir else None
        if folder is not None:
            self._stop_local_jobs(folder)

    def _stop_local_jobs(self, folder: Path) -> None:
        from mlipilot.executors.local import kill_tree, live_controllers

        store = self.store.root
        for pid, where in live_controllers(folder).items():
            kill_tree(pid)
            self.progress(f"  stopped job {pid} ({where.relative_to(store) if store in where.parents else where}) "
                          "left running by a stopped launcher")


def cfg_can_attach(cfg: RunConfig, row: TrialRecord) -> bool:
    """Only jobs of a kind that outlives its launcher (Slurm's; local ones on the same host) can be
    re-attached to, by the same kind."""
    if isinstance(row, dict):  # a row read as JSON (scripts, older callers)
        row = TrialRecord.from_json(row)
    kind = get_executor(cfg.executor)
    same_host = kind.name != "local" or row.host == socket.gethostname()
    return kind.can_reattach and row.executor == cfg.executor and bool(row.job_ids) and same_host
