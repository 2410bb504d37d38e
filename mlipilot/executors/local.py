"""`local`: each job a separate process on this machine (submitit's LocalExecutor, with a controller of
standard library only: local_controller.py). The controller outlives a killed launcher; `attach` finds
it again by pid and folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

    def _submit_command(self, command: str) -> submitit.LocalJob:
        """submitit's, with the standard-library controller (local_controller.py): 70 ms less on every
        local job's start. One task, no GPUs, no setup commands: all that the harness asks of it."""
        from submitit.local.local import LocalJobEnvironment

        env = dict(os.environ, SUBMITIT_LOCAL_NTASKS="1", SUBMITIT_LOCAL_COMMAND=command,
                   SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * self.parameters.get("timeout_min", 2.0))),
                   SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(self.parameters.get("signal_delay_s", 30))),
                   SUBMITIT_LOCAL_NODEID="0", SUBMITIT_LOCAL_JOB_NUM_NODES="1",
                   SUBMITIT_STDERR_TO_STDOUT="1" if self.parameters.get("stderr_to_stdout") else "",
                   SUBMITIT_EXECUTOR="local", CUDA_VISIBLE_DEVICES="", SUBMITIT_LOCAL_WITH_SHELL="",
                   MLIPILOT_LOCAL_USR_SIG=str(int(LocalJobEnvironment._usr_sig())))
        process = subprocess.Popen([sys.executable, "-I", "-S", CONTROLLER_SCRIPT, str(self.folder)], env=env)
        return submitit.LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=[0])


CONTROLLER_SCRIPT = str(Path(__file__).with_name("local_controller.py"))  # what a local job's controller runs
CONTROLLERS = ("submitit.local._local", CONTROLLER_SCRIPT)  # ours, or submitit's (a job an older version started)


class LocalExecutorKind(ExecutorKind):
    name = "local"
    can_reattach = True  # on this host: the job's controller is found by its pid and folder

    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train"):
        ex = HarnessLocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=int(timeout_min) + 1)  # a minute of slack: the job's own limit fires first
        return ex

    def attach(self, folder: Path, job_id: str):
        return attached_job(folder, job_id)


def controller_folder(pid: int) -> Path | None:
    """The submitit folder a live local-job controller `pid` serves (None: no such live process)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None  # gone (a zombie's cmdline is empty too)
    args = [a.decode(errors="replace") for a in argv if a]
    for name in CONTROLLERS:
        if name in args and args.index(name) + 1 < len(args):
            return Path(args[args.index(name) + 1]).resolve()
    return None


def live_controllers(under: Path) -> dict[int, Path]:
    """Every live local-job controller on this host whose folder lies under `under`: pid -> folder."""
    under = Path(under).resolve()
    found = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (folder := controller_folder(int(d.name))) is not None:
            if folder == under or under in folder.parents:
                found[int(d.name)] = folder
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (the job's task and its sandbox, which runs in a session
    of its own), children first found, so none is re-parented out of reach."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int(Path(d, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def attached_job(folder: Path, job_id: str):
    """A LocalJob for a controller this launcher did not start: running while that pid still serves
    `folder`, then finished when its result file exists, interrupted otherwise."""
    import submitit
    from submitit.core.utils import UncompletedJobError

    class AttachedLocalJob(submitit.LocalJob):
        def get_info(self, mode: str = "force") -> dict[str, str]:
            # finished once its result is written (the task and controller then exit within 0.15 s, as
            # for the launcher that started it: mlipilot.jobs.wait), running while its controller serves
            # the folder, else interrupted
            if self.paths.result_pickle.exists():
                return {"jobState": "FINISHED"}
            if controller_folder(int(self.job_id)) == Path(self.paths.folder).resolve():
                return {"jobState": "RUNNING"}
            return {"jobState": "INTERRUPTED"}

        def result(self):
            if self.get_info()["jobState"] == "INTERRUPTED":
                raise UncompletedJobError(f"job {self.job_id} interrupted: its process ended without a result")
            return super().result()

        def cancel(self, check: bool = True) -> None:
            if controller_folder(int(self.job_id)) == Path(self.paths.folder).resolve():
                kill_tree(int(self.job_id))

    return AttachedLocalJob(folder=Path(folder), job_id=str(job_id), tasks=[0])
