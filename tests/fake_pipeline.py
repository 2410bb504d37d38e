"""A trial pipeline that trains nothing: each run reads the commit's train/config.yaml and returns the
ScoreResult a test's `score(config, seed)` gives, so the fast lane tests the trial's decisions, git,
ledger, recovery and the agent loop in-process. Everything around the pipeline is the real harness."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import git
import yaml

from mlipilot import jobs
from mlipilot.model_export import WEIGHTS_FILE
from mlipilot.records import FailureKind, TrialRecord
from mlipilot.scorecard.result import MDRun, ScoreResult
from mlipilot.trial.stages import PipelineResult


class Crash(BaseException):
    """The launcher dying mid-trial (what a kill does): not an Exception, so nothing catches it."""


def cu_score(energy_rmse: float, force_rmse: float = 50.0, md_ok: bool = True) -> ScoreResult:
    """A result shaped like the fast Cu scorecard's (tests/mlipilot_testkit.FAST_SCORECARD)."""
    return ScoreResult({"energy_rmse": energy_rmse, "force_rmse": force_rmse, "md_failed_runs": 0.0 if md_ok else 1.0},
                       {"nvt1000_32": MDRun(md_ok, 40 if md_ok else 7, None if md_ok else "atoms 1.70 Å apart")},
                       {"holdout": 0.01})


@dataclass
class FakeJob:
    job_id: str


@dataclass
class FakePipeline:
    root: Path
    score: Callable[[dict, int], ScoreResult | str]  # a str: the job failed with that error
    attachable: bool = False  # what can_attach answers (a Slurm job that outlived its launcher)
    crash_after_submit: bool = False  # the launcher dies once the job id is recorded
    weights: Callable[[dict, int], bytes] | None = None  # the trained weights (default: config and seed)
    runs: list = field(default_factory=list)  # (commit, seed, attach) per run
    stopped: list = field(default_factory=list)

    def config(self, commit: str) -> dict:
        return yaml.safe_load(git.Repo(self.root).git.show(f"{commit}:train/config.yaml"))

    def _submit(self, seed: int, trial_dir: Path, on_submit, outcome: PipelineResult) -> FakeJob:
        job = FakeJob(f"fake-{len(self.runs)}-{seed}")
        if on_submit:
            on_submit("train", job.job_id, outcome)
        return job

    def start(self, commit: str, seed: int, trial_dir: Path, on_submit=None):
        return self._submit(seed, Path(trial_dir), on_submit, PipelineResult())

    def run(self, commit: str, seed: int, trial_dir: Path, attach: dict | None = None, on_submit=None) -> PipelineResult:
        attach = attach or {}
        self.runs.append((commit, seed, dict(attach)))
        out = PipelineResult(job_ids={k: str(getattr(v, "job_id", v)) for k, v in attach.items()})
        if "train" not in attach:
            out.job_ids["train"] = self._submit(seed, Path(trial_dir), on_submit, out).job_id
            if self.crash_after_submit:
                raise Crash("the launcher was killed")
        config = self.config(commit)
        result = self.score(config, seed)
        out.wall = {"queue": 0.0, "train": 0.1, "score": 0.1}
        if isinstance(result, str):
            out.error, out.failure = f"training failed: {result}", FailureKind.TRAIN_CRASH
            return out
        model = Path(trial_dir) / jobs.MODEL_DIR
        model.mkdir(parents=True, exist_ok=True)
        data = self.weights(config, seed) if self.weights else f"{sorted(config.items())} {seed}".encode()
        (model / WEIGHTS_FILE).write_bytes(hashlib.sha256(data).digest())
        out.job_ids["score"] = f"fake-score-{len(self.runs)}"
        out.score = result
        return out

    def can_attach(self, row: TrialRecord) -> bool:
        return self.attachable and bool(row.job_ids)

    def stop_leftovers(self, row: TrialRecord | None, folder: Path | None = None) -> None:
        self.stopped.append(row.trial if row is not None else str(folder))
