"""The `mlipilot` command as a user runs it: one-line errors for bad input, and a real trial
(real mace-torch training through a submitit local job) from the console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import git
import pytest
import yaml

from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config


def mlipilot(*args: str, cwd: Path | None = None, check_rc: int | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check_rc is not None:
        assert p.returncode == check_rc, p.stdout + p.stderr
    return p


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("mlipilot: error:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


@pytest.fixture
def run_dir(tmp_path, fast_benchmark) -> Path:
    """Made in-process (what `mlipilot init … --executor debug` calls): the console script's init costs
    seconds of imports per test; test_datacheck.py and the slow tests run it."""
    from mlipilot.rundir import init_run

    return init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)


def test_unknown_benchmark(tmp_path):
    err = one_line_error(mlipilot("init", "cu_emtt", str(tmp_path / "r")))
    assert "unknown benchmark 'cu_emtt'" in err and "cu_emt" in err
    assert not (tmp_path / "r").exists()


def test_init_refuses_non_empty_dir(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("")
    assert "not empty" in one_line_error(mlipilot("init", "cu_emt", str(tmp_path / "r")))


@pytest.mark.slow  # the console script imports mace-torch before it finds the missing file
def test_missing_data_file_in_user_benchmark(tmp_path, fast_benchmark):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(fast_benchmark, bench)
    (bench / "valid.xyz").unlink()
    err = one_line_error(mlipilot("init", str(bench), str(tmp_path / "r")))
    assert "benchmark.yaml" in err and "data.valid" in err and "does not exist" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.mlipilot-store").exists()  # nothing half-written


def test_bad_scorecard_in_user_benchmark(tmp_path, fast_benchmark):
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(fast_benchmark, bench)
    spec = yaml.safe_load((bench / "scorecard.yaml").read_text())
    spec["constraints"][0]["metric"] = "energy_rsme"
    (bench / "scorecard.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    err = one_line_error(mlipilot("init", str(bench), str(tmp_path / "r")))
    assert "scorecard.yaml" in err and "constraints[0].metric" in err and "unknown metric" in err


@pytest.mark.parametrize("edit,needle", [
    (lambda t: t.replace('kind = "debug"', 'kind = "pbs"'), "executor.kind"),
    (lambda t: t.replace("[executor]", "[executor\n"), "not valid TOML"),
    (lambda t: t.replace("train_timeout_min = 30", "train_timeout_min = \"soon\""), "executor.train_timeout_min"),
    (lambda t: t + "\n[run2]\n", None),
    (lambda t: t.replace('editable = ["train/"]', 'editable = ["../"]'), "run.editable"),
])
def test_malformed_run_config(run_dir, edit, needle):
    cfg = run_dir / "mlipilot.toml"
    cfg.write_text(edit(cfg.read_text()))
    p = mlipilot("trial", "-m", "x", cwd=run_dir)
    if needle is None:  # an extra section is harmless for the config but is a protected-file change
        assert "mlipilot.toml" in one_line_error(p)
        return
    err = one_line_error(p)
    assert "mlipilot.toml" in err and needle in err


def test_outside_a_run_directory(tmp_path):
    err = one_line_error(mlipilot("status", cwd=tmp_path))
    assert "mlipilot.toml: not found" in err


def test_dirty_protected_file_from_cli(run_dir):
    (run_dir / "scorecard.yaml").write_text("name: easier\n")
    err = one_line_error(mlipilot("trial", "-m", "x", cwd=run_dir))
    assert "scorecard.yaml" in err and "git checkout" in err


@pytest.mark.slow
def test_real_training_trial_through_local_executor(tmp_path, fast_benchmark):
    """`mlipilot init` + `mlipilot trial -m baseline` with real mace-torch training in a submitit job.
    The verdict asserted is the first trial's, accepted by rule whatever the metrics: no training noise."""
    run = tmp_path / "run"
    mlipilot("init", str(fast_benchmark), str(run), check_rc=0)
    cfg_file = run / "train" / "config.yaml"
    cfg_file.write_text(cfg_file.read_text().replace("max_num_epochs: 6", "max_num_epochs: 2"))
    p = mlipilot("trial", "-m", "baseline, two epochs", cwd=run)
    print(p.stdout[-3000:], p.stderr[-3000:])
    assert p.returncode == 0
    assert "Epoch 1:" in p.stdout and "ACCEPTED" in p.stdout
    cfg = load_run_config(run)
    (row,) = Ledger(cfg.store / "ledger.jsonl").trials()
    assert row["executor"] == "local" and row["verdict"] == "accepted"
    assert row["wall"]["train"] > 1 and row["wall"]["score"] > 1
    assert row["metrics"]["energy_rmse"] > 0 and "score" not in row["job_ids"]  # the train job scored too
    assert not (run / "holdout.xyz").exists() and (cfg.store / "holdout.xyz").exists()
    status = json.loads(mlipilot("status", "--json", cwd=run, check_rc=0).stdout)
    assert status["best"]["trial"] == 1
    log = git.Repo(run).git.log("--format=%(trailers:key=MLIPilot-Verdict,valueonly)", "-1")
    assert log.strip() == "accepted"
