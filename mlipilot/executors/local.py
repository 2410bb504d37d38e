"""`local`: each job a separate process on this machine (submitit's LocalExecutor)."""

from __future__ import annotations

from pathlib import Path

import submitit

from mlipilot.executors.base import ExecutorKind, harness_python, job_folder, submitting_from


class HarnessLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor whose job processes (the controller and `python -P`) start in the job
    folder: the controller's `python -m` puts its working directory first on sys.path."""

    def __init__(self, folder: Path | str, **kwargs) -> None:
        super().__init__(folder, python=harness_python(), **kwargs)

    def _internal_process_submissions(self, delayed_submissions):
        with submitting_from(job_folder(self.folder)):
            return super()._internal_process_submissions(delayed_submissions)


class LocalExecutorKind(ExecutorKind):
    name = "local"

    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train"):
        ex = HarnessLocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=int(timeout_min) + 1)  # a minute of slack: the job's own limit fires first
        return ex
