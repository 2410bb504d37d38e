"""The oldest Python MLIPilot supports runs a whole trial (issue 33, item 8): Debian 12's
/usr/bin/python3 is 3.11.2, where `TarFile.extractall(filter=...)` (3.11.4+) does not exist and every
trial used to fail. The interpreter under test borrows this environment's installed packages (same
CPython 3.11 ABI), so the trial — launcher, local job controller, sandboxed training and export,
scoring — runs on 3.11.2's own standard library."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from mlipilot_testkit import ROOT, copy_trainer

OLDEST = Path("/usr/bin/python3")


def _version(python: Path) -> tuple[int, ...] | None:
    if not python.is_file():
        return None
    p = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:3])"], capture_output=True, text=True)
    return tuple(int(x) for x in p.stdout.split()) if p.returncode == 0 else None


def test_requires_python_matches_what_the_code_needs():
    import tomllib

    req = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert req == ">=3.11", "the oldest-Python test below runs 3.11.2: keep requires-python and it in step"


@pytest.mark.slow
def test_a_trial_runs_on_python_3_11_2(tmp_path, fast_benchmark, good_model):
    version = _version(OLDEST)
    if version is None or version[:2] != (3, 11) or sys.version_info[:2] != (3, 11):
        pytest.skip(f"{OLDEST} is not a CPython 3.11 beside this 3.11 environment")
    from mlipilot.rundir import init_run

    root = init_run(str(fast_benchmark), tmp_path / "run", executor="local", progress=lambda s: None)
    (root / "train" / "train.py").write_text(copy_trainer(good_model))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *site.getsitepackages()]),
           "OMP_NUM_THREADS": "1"}
    code = "import sys; from mlipilot.cli import main; sys.exit(main())"
    p = subprocess.run([str(OLDEST), "-c", code, "trial", "-m", f"on Python {'.'.join(map(str, version))}",
                        "--run", str(root)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    rows = [json.loads(line) for line in (root.parent / "run.mlipilot-store" / "ledger.jsonl").read_text().splitlines()]
    trial = [r for r in rows if r.get("trial") and r.get("status") != "submitted"][-1]
    assert trial["verdict"] == "accepted" and trial["metrics"]["force_rmse"] > 0, trial.get("reason")
