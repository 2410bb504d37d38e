"""`local`: each job a separate process on this machine (submitit's LocalExecutor)."""

from __future__ import annotations

from pathlib import Path

from mlipilot.executors.base import ExecutorKind


class LocalExecutorKind(ExecutorKind):
    name = "local"

    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train"):
        import submitit

        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=int(timeout_min) + 1)  # a minute of slack: the job's own limit fires first
        return ex
