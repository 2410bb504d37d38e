"""`debug`: jobs run in the submitting process (submitit's DebugExecutor); no time limit of its own."""

from __future__ import annotations

from pathlib import Path

from mlipilot.executors.base import ExecutorKind


class DebugExecutorKind(ExecutorKind):
    name = "debug"
    in_process = True

    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train"):
        import submitit

        return submitit.DebugExecutor(folder=folder)
