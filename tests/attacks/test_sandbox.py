"""The sandbox itself: present where CI runs (the suite fails if it silently is not), refused with the
fix when configured but unable to start, and loud at every trial when it is `none`."""

from __future__ import annotations

import shutil
import subprocess
import sys

import git
import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.errors import MLIPilotError
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.sandbox import NONE_WARNING, SandboxKind, probe
from mlipilot.trial import TrialRunner


def mlipilot(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlipilot.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_bubblewrap_works_here():
    assert shutil.which("bwrap"), "bubblewrap is missing: .ci/run installs it (apt-get install bubblewrap)"
    assert probe() == (SandboxKind.BWRAP, None)


def test_a_sandbox_that_cannot_start_refuses_the_trial(tmp_path, fast_benchmark, good_model):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", sandbox="apptainer",
                    progress=lambda s: None)
    (root / "train" / "train.py").write_text(copy_trainer(good_model))
    with pytest.raises(MLIPilotError, match=r"mlipilot.toml: sandbox apptainer cannot start: .*set \[sandbox\]"):
        TrialRunner(load_run_config(root)).run("anything")


@pytest.mark.slow  # two trials through the console script
def test_none_is_said_at_every_trial_and_in_the_audit(tmp_path, fast_benchmark, good_model):
    run = tmp_path / "run"
    p = mlipilot("init", str(fast_benchmark), str(run), "--executor", "debug", "--sandbox", "none")
    assert p.returncode == 0, p.stderr
    (run / "train" / "train.py").write_text(copy_trainer(good_model))
    for message in ("first", "second"):
        (run / "train" / "notes.txt").write_text(message)
        p = mlipilot("trial", "-m", message, cwd=run)
        assert p.returncode == 0, p.stderr
        assert NONE_WARNING in p.stdout
    log = git.Repo(run).git.log("--format=%(trailers:key=MLIPilot-Sandbox,valueonly)", "-1")
    assert log.strip() == "none"
    rows = Ledger(load_run_config(run).store / "ledger.jsonl").trials()
    assert [r["sandbox"] for r in rows] == ["none", "none"]


@pytest.mark.slow  # a bench whose baselines train for real
def test_bench_refuses_to_compare_runs_sealed_differently(tmp_path, fast_benchmark):
    from mlipilot.comparison import run_bench

    out = tmp_path / "bench"
    init_run(str(fast_benchmark), out / "runs" / "expert-s1", store=out / "runs" / "expert-s1.mlipilot-store",
             executor="debug", sandbox="none", progress=lambda s: None)
    result = run_bench(str(fast_benchmark), ["expert"], 2, 0, out, executor="debug", progress=print)
    assert result["incomplete"] == ["expert-s1"]
    assert "trains with sandbox none, the other runs with bwrap" in result["manifest"]["runs"]["expert-s1"]["error"]
    result = run_bench(str(fast_benchmark), ["expert"], 2, 0, out, executor="debug", progress=print,
                       allow_mixed_sandbox=True)
    assert result["incomplete"] == []
