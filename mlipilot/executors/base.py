"""What an executor backend provides: `ExecutorKind`, one subclass per module in this package."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import submitit

FieldType = type | tuple[type, ...]


class ExecutorKind(ABC):
    """One way to run training, scoring and validation jobs, chosen by name in mlipilot.toml.

    `config_fields` are the keys the kind's options may use in mlipilot.toml, in the table
    `config_section` ("executor": beside `kind`); `config_template` holds their commented
    example lines for the template `mlipilot init` writes. `make` receives the options found."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # how messages name it (default: name)
    config_section: ClassVar[str] = "executor"
    config_fields: ClassVar[dict[str, FieldType]] = {}
    config_template: ClassVar[str] = ""
    can_reattach: ClassVar[bool] = False  # its jobs outlive a killed launcher and `attach` finds them
    in_process: ClassVar[bool] = False  # jobs run inside the submitting process
    runs_launchers_as_jobs: ClassVar[bool] = False  # `mlipilot bench` submits each run's launcher as a job

    @abstractmethod
    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train") -> submitit.Executor:
        """A submitit executor for one `stage` (train | score | validate) job with this time limit."""

    def attach(self, folder: Path, job_id: str) -> submitit.Job:
        """Re-attach to a job submitted by an earlier (killed) launcher."""
        raise ValueError(f"cannot re-attach to a {self.name} job")

    def launcher_executor(self, folder: Path, timeout_min: float, parallel: int) -> submitit.Executor:
        """Where `mlipilot bench` runs its launchers, `parallel` at a time (runs_launchers_as_jobs only)."""
        raise NotImplementedError(f"the {self.name} executor does not run launchers as jobs")
