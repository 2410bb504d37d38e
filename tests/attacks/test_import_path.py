"""Harness jobs import nothing from the launcher's working directory: submitit starts them with
`python -u -m submitit.core._submit`, which (without -P) puts the working directory first on sys.path
and unpickles the job, importing modules, before any harness code runs. `mlipilot validate` started
inside a run's train/ imported the agent's train/yaml.py that way, and loosened the spec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from mlipilot_testkit import copy_trainer, with_validation

from mlipilot import jobs
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner


def plant(folder: Path, marker: Path, names: tuple[str, ...]) -> None:
    """Modules that record their import in `marker` and then fail: any import from `folder` shows."""
    for name in names:
        (folder / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\nraise ImportError('planted {name}')\n")


def test_local_jobs_run_from_their_folder_without_the_launcher_directory_on_sys_path(tmp_path, monkeypatch):
    launcher, marker = tmp_path / "train", tmp_path / "imported.txt"
    launcher.mkdir()
    plant(launcher, marker, ("numpy", "yaml", "submitit", "mlipilot", "cloudpickle"))
    monkeypatch.chdir(launcher)

    def where():  # pickled by value: the job needs nothing of this test module
        import os
        import sys
        return os.getcwd(), list(sys.path), sys.flags.safe_path

    folder = tmp_path / "store" / "trials" / "0001" / "submitit"
    job = jobs.make_executor("local", folder, timeout_min=2, stage="score").submit(where)
    cwd, path, safe = job.result()
    assert not marker.exists(), marker.read_text()
    assert Path(cwd) == folder.resolve() and safe
    assert str(launcher) not in path and "" not in path and "." not in path
    assert Path.cwd() == launcher  # the launcher's own working directory is back


TIGHT = {"name": "tight", "reference": {"name": "emt"},  # the good model's 0.24 % lattice error fails it
         "checks": [{"name": "lattice_constant", "kind": "lattice_constant", "max": 1e-6}]}


@pytest.mark.slow  # a scored trial (debug executor) and one validation job (~30 s)
def test_validate_from_train_does_not_import_the_agents_modules(tmp_path, fast_benchmark, good_model):
    bench = tmp_path / "bench"
    shutil.copytree(fast_benchmark, bench)
    with_validation(bench, TIGHT)
    run = init_run(str(bench), tmp_path / "run", executor="debug", progress=print)
    (run / "train" / "train.py").write_text(copy_trainer(good_model))
    assert TrialRunner(load_run_config(run), progress=print).run("baseline")["metrics"]
    # what the agent leaves in train/ (after its trial was scored): yaml.py loosens every bound
    marker = tmp_path / "imported.txt"
    (run / "train" / "yaml.py").write_text(textwrap.dedent(f"""
        import sys
        open({str(marker)!r}, "a").write("yaml\\n")
        sys.path = [p for p in sys.path if p not in ("", ".", {str(run / "train")!r})]
        del sys.modules["yaml"]
        import yaml as _real
        _load = _real.safe_load
        def safe_load(s):
            d = _load(s)
            for c in (d or {{}}).get("checks", []) if isinstance(d, dict) else []:
                c["max"] = 1e9
            return d
        _real.safe_load = safe_load
        sys.modules["yaml"] = _real
    """))
    plant(run / "train", marker, ("numpy", "mlipilot"))
    p = subprocess.run(["mlipilot", "validate", "..", "--executor", "local", "--timeout-min", "5", "--json"],
                       cwd=run / "train", capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert not marker.exists(), f"imported from train/: {marker.read_text()}"
    assert p.returncode == 3, p.stdout[-2000:] + p.stderr[-2000:]  # what an honest run gives: the check fails
    done = json.loads(p.stdout[p.stdout.index("[\n"):])
    assert [(d["trial"], d["passed"], d["failed_checks"]) for d in done] == [(1, False, ["lattice_constant"])]
