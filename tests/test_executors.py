"""The executor registry (mlipilot.executors): names, the CLI's choices, one-line errors with the
nearest name, and a user's executor named by dotted path. Fast: nothing trains or submits."""

from __future__ import annotations

import argparse
import dataclasses
import socket
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlipilot import jobs
from mlipilot.cli import build_parser
from mlipilot.errors import MLIPilotError
from mlipilot.executors import EXECUTORS, ExecutorKind, UnknownExecutor, executor_names, get_executor
from mlipilot.run_config import TEMPLATE, load_run_config
from mlipilot.trial import cfg_can_attach

USER_MODULE = '''
import submitit

from mlipilot.executors.base import ExecutorKind


class QueueKind(ExecutorKind):
    """A made-up backend: jobs in-process, with one option of its own."""
    config_fields = {"queue": str}
    config_template = '# queue = "fast"\\n'

    def make(self, folder, timeout_min, options, stage="train"):
        ex = submitit.DebugExecutor(folder=folder)
        ex.queue = options.get("queue")
        return ex
'''


def write_config(root: Path, executor: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.format(name="r", benchmark="cu_emt", branch="mlipilot/r", store=root.parent / "store",
                           executor=executor, train_timeout_min=30, score_timeout_min=10, sandbox="none",
                           base_seed=1)
    (root / "mlipilot.toml").write_text(text.replace("score_timeout_min = 10\n", f"score_timeout_min = 10\n{extra}"))
    return root


def user_module(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "userpkg"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    return folder


def test_registry_names_are_the_cli_choices():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    choices = {name: next((a.choices for a in p._actions if "--executor" in a.option_strings), "absent")
               for name, p in sub.choices.items()}
    names = executor_names()
    assert names == tuple(EXECUTORS) == ("local", "debug", "slurm")
    for command in ("trial", "noise", "run", "bench", "validate", "demo"):
        assert tuple(choices[command]) == names, command
    assert choices["init"] is None  # validated by the registry: did-you-mean, dotted paths
    assert choices["data"] == ["inline", *(n for n in names if not get_executor(n).in_process)]


def test_every_registered_kind_loads_and_its_options_are_in_the_template():
    for name in executor_names():
        kind = get_executor(name)
        assert isinstance(kind, ExecutorKind) and kind.name == name
        assert kind.config_template in TEMPLATE.replace("{{", "{").replace("}}", "}")
    assert " | ".join(executor_names()) in TEMPLATE
    assert [n for n in executor_names() if get_executor(n).can_reattach] == ["local", "slurm"]
    assert [n for n in executor_names() if get_executor(n).runs_launchers_as_jobs] == ["slurm"]


def test_unknown_executor_from_the_console_script_names_the_nearest(tmp_path):
    p = subprocess.run(["mlipilot", "init", "cu_emt", str(tmp_path / "r"), "--executor", "slrum"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("mlipilot: error:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "unknown executor 'slrum'" in lines[0] and "did you mean 'slurm'" in lines[0]
    assert not (tmp_path / "r").exists()


def test_unknown_executor_in_config_is_one_line_with_file_field_and_fix(tmp_path):
    root = write_config(tmp_path / "run", "locl")
    with pytest.raises(MLIPilotError) as e:
        load_run_config(root)
    msg = str(e.value)
    assert "\n" not in msg and "mlipilot.toml" in msg and "executor.kind" in msg and "did you mean 'local'" in msg
    with pytest.raises(UnknownExecutor, match="use one of local, debug, slurm"):
        get_executor("pbs")
    with pytest.raises(ValueError, match="unknown executor"):  # what jobs.make_executor raised before
        jobs.make_executor("pbs", tmp_path / "sub", 1)


def test_slurm_options_still_validated_whatever_the_kind(tmp_path):
    cfg = load_run_config(write_config(tmp_path / "a", "local", 'partition = "gpu"\nmem_gb = 8\n'))
    assert cfg.slurm == {"partition": "gpu", "mem_gb": 8}
    with pytest.raises(MLIPilotError, match="executor.mem_gb.*see the commented Slurm keys"):
        load_run_config(write_config(tmp_path / "b", "slurm", 'mem_gb = "lots"\n'))
    with pytest.raises(MLIPilotError, match="executor.queue.*unknown key"):
        load_run_config(write_config(tmp_path / "c", "slurm", 'queue = "fast"\n'))


def test_user_executor_by_dotted_path_in_process(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(user_module(tmp_path, "mlipilot_test_user_exec_a")))
    spec = "mlipilot_test_user_exec_a:QueueKind"
    cfg = load_run_config(write_config(tmp_path / "run", spec, 'queue = "fast"\n'))
    assert cfg.executor == spec and cfg.slurm == {"queue": "fast"}
    ex = jobs.make_executor(cfg.executor, tmp_path / "sub", 1, cfg.slurm)
    assert ex.queue == "fast"
    assert not cfg_can_attach(cfg, {"executor": spec, "job_ids": {"train": "1"}})  # can_reattach defaults to False
    with pytest.raises(MLIPilotError, match="executor.queue.*expected str, got 3"):
        load_run_config(write_config(tmp_path / "bad", spec, "queue = 3\n"))
    with pytest.raises(ValueError, match="cannot re-attach"):
        jobs.attach(spec, tmp_path / "sub", "1")


def test_user_executor_by_dotted_path_on_pythonpath(tmp_path):
    """The same through a fresh interpreter that finds the module on PYTHONPATH only."""
    folder = user_module(tmp_path, "mlipilot_test_user_exec_b")
    root = write_config(tmp_path / "run", "mlipilot_test_user_exec_b:QueueKind", 'queue = "fast"\n')
    code = ("import sys; from mlipilot.run_config import load_run_config; "
            "c = load_run_config(sys.argv[1]); print(c.executor, c.slurm)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "mlipilot_test_user_exec_b:QueueKind {'queue': 'fast'}"


@pytest.mark.parametrize("spec,needle", [
    ("mlipilot_no_such_module_x:Kind", "cannot import mlipilot_no_such_module_x"),
    ("mlipilot.executors.local:NoSuchKind", "has no 'NoSuchKind'"),
    ("mlipilot.errors:MLIPilotError", "is not an ExecutorKind"),
])
def test_bad_dotted_path_is_one_line(tmp_path, spec, needle):
    with pytest.raises(MLIPilotError) as e:
        load_run_config(write_config(tmp_path / "run", spec))
    assert needle in str(e.value) and "executor.kind" in str(e.value) and "\n" not in str(e.value)


def test_reattach_follows_can_reattach(tmp_path):
    cfg = load_run_config(write_config(tmp_path / "run", "slurm"))
    row = {"executor": "slurm", "job_ids": {"train": "12"}}
    assert cfg_can_attach(cfg, row)
    assert not cfg_can_attach(cfg, {**row, "executor": "local"})
    assert not cfg_can_attach(cfg, {**row, "job_ids": {}})
    local = dataclasses.replace(cfg, executor="local")
    here = {**row, "executor": "local", "host": socket.gethostname()}
    assert cfg_can_attach(local, here)  # a local job outlives its launcher on the same host
    assert not cfg_can_attach(local, {**here, "host": "another-node"})
    assert not cfg_can_attach(dataclasses.replace(cfg, executor="debug"), {**row, "executor": "debug"})
    with pytest.raises(ValueError, match="cannot re-attach to a debug job"):
        jobs.attach("debug", tmp_path / "sub", "12")
    # a local job whose process is gone and left no result reads as interrupted
    job = jobs.attach("local", tmp_path / "sub", "999999999")
    assert job.done() and job.state == "INTERRUPTED"


def test_a_failed_training_names_mace_torchs_own_error_not_the_wrappers(tmp_path):
    """train.py runs mace-torch as a child: the reason the agent reads is the child's error (what the
    0.5B model needed on cu_hot), not subprocess's CalledProcessError of the wrapper."""
    from mlipilot.jobs import last_error_line

    log = tmp_path / "train.log"
    log.write_text("Epoch 0 ...\n"
                   "run_train.py: error: argument --distance_transform: invalid choice: 'nvt3500_108' "
                   "(choose from 'None', 'Agnesi', 'Soft')\n"
                   "Traceback (most recent call last):\n"
                   '  File "train/train.py", line 80, in main\n'
                   "    subprocess.run(cmd, check=True)\n"
                   "subprocess.CalledProcessError: Command '['python', '-m', 'mace.cli.run_train']' returned "
                   "non-zero exit status 2.\n")
    assert last_error_line(log).startswith("run_train.py: error: argument --distance_transform: invalid choice")
    log.write_text("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad E0s\n")
    assert last_error_line(log) == "ValueError: bad E0s"  # a plain failure: its own last line
