"""The stages of a trial's pipeline: each a job function, its resources, how its arguments are built
from the trial and what earlier stages produced, and how its result (or failure) is read into the
trial's `PipelineResult`. Adding a stage (sample, select, label ...) is one `Stage` here and its place in
`STAGES`; the pipeline submits, re-attaches, waits and streams logs for all of them alike."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mlipilot import jobs, safe_tar
from mlipilot.integrity import large_file_problem, large_files, seal_problem
from mlipilot.records import FailureKind
from mlipilot.run_config import RunConfig
from mlipilot.sanitize import single_line, strip_controls, tail
from mlipilot.scorecard.result import ScoreResult
from mlipilot.store import SCORE_FILE, Store


@dataclass
class PipelineResult:
    """What a trial's jobs gave: the typed score, or why there is none."""
    job_ids: dict[str, str] = field(default_factory=dict)  # stage -> job id
    wall: dict[str, float] = field(default_factory=dict)  # seconds by phase (queue, train, train_*, score)
    score: ScoreResult | None = None
    error: str | None = None  # why the trial failed (the verdict's reason quotes it)
    failure: FailureKind | None = None
    fatal: str | None = None  # the store changed under the trial: recorded, then the command stops
    log_tail: str | None = None
    prepare_seconds: float | None = None
    train_threads: int | None = None
    results: dict[str, dict] = field(default_factory=dict)  # stage -> its job's result, for later stages

    score_json: dict | None = None  # the score exactly as the job wrote it: what the ledger records

    @property
    def metrics(self) -> dict | None:
        """The flat scorecard the ledger's `metrics` holds."""
        if self.score_json is not None:
            return self.score_json
        return self.score.to_json() if self.score is not None else None


@dataclass
class StageContext:
    """One pipeline run: the commit it trains, its harness seed and folder, the run's settings."""
    cfg: RunConfig
    store: Store
    env: "JobEnv"
    commit: str
    seed: int
    trial_dir: Path
    outcome: PipelineResult
    progress: Callable[[str], None] = print


@dataclass(frozen=True)
class JobEnv:
    """What jobs get from the harness, fixed per run: the sandbox, the sealed hashes, size caps,
    foundation models."""
    sandbox: dict  # SandboxConfig.to_json()
    sandbox_kind: str
    sealed: dict
    caps: dict
    foundation: dict


@dataclass(frozen=True)
class Stage:
    name: str  # its key in the ledger's job_ids and the executor's resources
    job: Callable[..., dict]  # a module-level job function (submitit pickles it)
    timeout_min: Callable[[RunConfig], float]
    args: Callable[[StageContext], tuple]  # the job's arguments
    take: Callable[[StageContext, dict, float], None]  # read the job's result (and the submit time) into the outcome
    failed: str  # the error's prefix: "training failed"
    failure: FailureKind  # the kind of a failure the job did not name
    on_fail: Callable[[StageContext, jobs.JobFailed, object, float], None]  # log tail and wall of a failure
    announce: str | None = None  # the progress line before it is submitted
    prepare: Callable[[StageContext], None] | None = None  # before a fresh submit (not on re-attach)
    started: Callable[[StageContext, object], str] | None = None  # the progress line once submitted
    poll: Callable[[StageContext], Callable[[], None]] | None = None  # streams the job's log while it runs
    cleanup: Callable[[StageContext], None] | None = None  # after the job, whatever happened
    check: Callable[[StageContext], str | None] | None = None  # after success: a fatal store problem
    limit_option: str | None = None  # the mlipilot.toml option a timeout names
    inline: Callable[[StageContext], dict | None] | None = None  # its result, when an earlier job already made it


# -- train: the commit, extracted as git shows it, trained in the sandbox, its model exported ------------
def _prepare_train(ctx: StageContext) -> None:
    """Extract the trial's commit into a fresh folder (what runs is exactly what git shows)."""
    t0 = time.time()
    job = ctx.trial_dir / "job"
    shutil.rmtree(job, ignore_errors=True)
    src = job / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ctx.commit], cwd=ctx.cfg.root,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        safe_tar.extract(tar, src)
    provide_large_files(ctx.cfg.root, src)  # what git leaves out, checked against the commit's manifest
    ctx.outcome.prepare_seconds = round(time.time() - t0, 4)


def provide_large_files(root: Path, src: Path) -> None:
    """Copy the run's git-ignored large data files into a job's extracted tree `src`, at their paths in
    the run, and check each copy (what training reads) against the manifest in `src` (the commit's).
    A copy, not a link: the job must not be able to write the run's own file."""
    for rel, entry in large_files(src).items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (root / rel).is_file() and not (root / rel).is_symlink():
            shutil.copyfile(root / rel, target)
        if problem := large_file_problem(target, rel, entry):
            raise jobs.JobFailed(f"integrity: {problem}", kind=FailureKind.INTEGRITY)


def _train_args(ctx: StageContext) -> tuple:
    score = {**score_kwargs(ctx), "warm": _latest_model(ctx)} if score_in_train_job(ctx.cfg) else None
    return (str(ctx.trial_dir / "job" / "src"), str(ctx.trial_dir), ctx.cfg.train_timeout_min * 60,
            ctx.env.sandbox, int(ctx.seed), ctx.env.foundation, ctx.cfg.device, score)


def _latest_model(ctx: StageContext) -> str | None:
    """The newest exported model of an earlier trial (most edits keep the architecture: the job builds
    it while training runs), None before the first."""
    folders = [d for d in (ctx.store.root / "trials").glob(f"*/{jobs.MODEL_DIR}")
               if d.parent != ctx.trial_dir and (d / "model.json").is_file() and not d.is_symlink()]
    return str(max(folders, key=lambda d: (d / "model.json").stat().st_mtime)) if folders else None


def score_kwargs(ctx: StageContext) -> dict:
    """score_job's arguments after the model folder (also what train_job's `score` takes)."""
    return {"spec_path": str(ctx.store.scorecard), "holdout_path": str(ctx.store.holdout),
            "out_json": str(ctx.trial_dir / SCORE_FILE), "expected": ctx.env.sealed, "caps": ctx.env.caps}


def score_in_train_job(cfg: RunConfig) -> bool:
    """Score in the train job (no second job start, its imports done while training ran) unless
    that job holds a GPU, which scoring (a CPU figure) would keep busy."""
    slurm = cfg.slurm or {}
    return cfg.executor != "slurm" or (int(slurm.get("gpus_per_node", 0) or 0) == 0 and not slurm.get("gres"))


def _train_poll(ctx: StageContext) -> Callable[[], None]:
    log, seen = ctx.trial_dir / "train.log", [0]

    def show_epochs() -> None:  # stream mace-torch's epoch lines as progress
        if not log.exists():
            return
        lines = log.read_text(errors="replace").splitlines()
        for line in lines[seen[0]:]:
            if "Epoch" in line and "RMSE" in line:
                ctx.progress("  " + single_line(line.split("INFO:")[-1]))  # the agent's train.py writes it
        seen[0] = len(lines)

    return show_epochs


def _train_take(ctx: StageContext, result: dict, submitted: float) -> None:
    ctx.outcome.results["train"] = result
    wall = ctx.outcome.wall
    wall["queue"] = max(0.0, result["started"] - submitted)
    wall["train"] = result["seconds"]
    wall.update({f"train_{k}": v for k, v in result.get("steps", {}).items()})
    if result.get("threads"):
        ctx.outcome.train_threads = int(result["threads"])
        ctx.progress(f"  trained in {result['steps'].get('train_py', result['seconds']):.0f} s on "
                     f"{result['threads']} thread{'s' * (result['threads'] != 1)} ({result.get('device', 'cpu')}; "
                     "mlipilot.cores)")


def _train_fail(ctx: StageContext, e: jobs.JobFailed, job, submitted: float) -> None:
    logs = [f.read_text(errors="replace") for f in (ctx.trial_dir / "train.log", ctx.trial_dir / "export.log")
            if f.exists()]
    ctx.outcome.log_tail = tail("\n".join(x for x in logs if x.strip())) if logs else None
    ctx.outcome.wall = {"queue": 0.0, "train": time.time() - submitted}


def _seal_still_holds(ctx: StageContext) -> str | None:
    problem = seal_problem(ctx.cfg.root, ctx.store.root)  # checked again right before scoring
    return f"store integrity: {problem}" if problem else None


TRAIN = Stage(
    name="train", job=jobs.train_job, timeout_min=lambda cfg: cfg.train_timeout_min, args=_train_args,
    take=_train_take, failed="training failed", failure=FailureKind.TRAIN_CRASH, on_fail=_train_fail,
    prepare=_prepare_train,
    started=lambda ctx, job: (f"  training (job {job.job_id}, {ctx.cfg.executor}, sandbox {ctx.env.sandbox_kind}); "
                              f"log: {ctx.trial_dir / 'train.log'}"),
    poll=_train_poll,
    cleanup=lambda ctx: shutil.rmtree(ctx.trial_dir / "job" / "src", ignore_errors=True),  # the commit holds it
    check=_seal_still_holds)


# -- score: the exported model against the sealed scorecard and holdout ---------------------------------
def _score_args(ctx: StageContext) -> tuple:
    return (ctx.outcome.results["train"]["model"], *score_kwargs(ctx).values())


def _score_take(ctx: StageContext, result: dict, submitted: float) -> None:
    for line in result["log"]:
        ctx.progress(strip_controls(line))
    ctx.outcome.score = ScoreResult.from_json(result["metrics"])
    ctx.outcome.score_json = result["metrics"]
    ctx.outcome.wall["score"] = result["seconds"]


def _score_fail(ctx: StageContext, e: jobs.JobFailed, job, submitted: float) -> None:
    ctx.outcome.log_tail = tail(e.detail or (_job_stderr(job) if job else str(e)))
    ctx.outcome.wall["score"] = time.time() - submitted


def _job_stderr(job) -> str:
    try:
        return Path(job.paths.stderr).read_text(errors="replace")
    except Exception:
        return ""


SCORE = Stage(
    name="score", job=jobs.score_job, timeout_min=lambda cfg: cfg.score_timeout_min, args=_score_args,
    take=_score_take, failed="scoring failed", failure=FailureKind.SCORE_CRASH, on_fail=_score_fail,
    announce="  scoring", limit_option="score_timeout_min",
    inline=lambda ctx: jobs.scored_in_job(ctx.outcome.results["train"]))  # scored by the train job itself

STAGES: tuple[Stage, ...] = (TRAIN, SCORE)
