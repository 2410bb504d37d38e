"""What an executor backend provides: `ExecutorKind`, one subclass per module in this package."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import submitit

FieldType = type | tuple[type, ...]

_CWD_LOCK = threading.RLock()  # the working directory is the process's: one submission at a time changes it


def harness_python() -> str:
    """The interpreter command of every job: -P keeps the working directory off sys.path (submitit's
    `python -m submitit.core._submit` unpickles the job, importing modules, before any harness code
    runs); PYTHONPATH still counts, for users' own plugins."""
    return f"{shlex.quote(sys.executable)} -P"


def job_folder(folder: Path) -> Path:
    """The part of a submitit folder before any %j: a harness-owned folder that exists at submission."""
    import submitit

    path = submitit.core.utils.JobPaths.get_first_id_independent_folder(Path(folder)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def submitting_from(folder: Path) -> Iterator[None]:
    """Submit with `folder` as the working directory, which the job's processes inherit: never the
    launcher's (a run's train/, where a planted yaml.py would shadow the real one)."""
    with _CWD_LOCK:
        before = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(before)


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
