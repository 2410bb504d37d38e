"""Against a live single-node Slurm (tests/slurm/start_cluster.sh; .ci/run starts and stops it).
Skipped, with the reason, where no cluster answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from mlipilot_testkit import copy_trainer

from mlipilot import jobs
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner


def _cluster_up() -> str | None:
    if not os.environ.get("SLURM_CONF") or not shutil.which("sinfo"):
        return "no Slurm cluster configured (run tests/slurm/start_cluster.sh and export SLURM_CONF)"
    p = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if p.returncode != 0 or "idle" not in p.stdout and "mix" not in p.stdout and "alloc" not in p.stdout:
        return f"Slurm does not answer: {p.stderr.strip() or p.stdout.strip()}"
    return None


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_cluster_up() is not None, reason=str(_cluster_up()))]


@pytest.fixture
def cfg(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="slurm", progress=lambda s: None)
    return load_run_config(root)


def sacct(job_id: str) -> str:
    """`JobID State` once accounting shows a final state (it lags the scheduler, more so under load)."""
    out = ""
    for _ in range(120):
        out = subprocess.run(["sacct", "-n", "-X", "-j", job_id, "-o", "JobID,State%20"], capture_output=True,
                             text=True).stdout
        if out.split()[1:2] and out.split()[1] not in ("RUNNING", "PENDING", "COMPLETING", "REQUEUED"):
            return out
        time.sleep(0.5)
    return out


def test_full_trial_through_slurm(cfg, good_model):
    (cfg.root / "train" / "train.py").write_text(copy_trainer(str(good_model), sleep=0))
    r = TrialRunner(cfg, progress=print).run("trained model through Slurm")
    assert r["verdict"] == "accepted" and r["executor"] == "slurm" and r["sandbox"] == "bwrap"
    for job_id in r["job_ids"].values():
        assert "COMPLETED" in sacct(job_id)


def test_sealed_inside_the_slurm_job(cfg, good_model):
    """The training job on the compute node runs the same sandbox: the store stays out of reach."""
    holdout = cfg.store / "holdout.xyz"
    (cfg.root / "train" / "train.py").write_text(f"print(open({str(holdout)!r}).read())\n"
                                                  + copy_trainer(str(good_model)))
    r = TrialRunner(cfg, progress=print).run("read the holdout from a Slurm job")
    assert r["verdict"] == "failed" and "No such file or directory" in r["reason"], r["reason"]
    assert "REF_energy" not in (r["log_tail"] or "")


def test_job_that_raises_records_its_traceback(cfg, tmp_path):
    bad = tmp_path / "garbage.model"
    bad.write_text("not a torch file")
    (cfg.root / "train" / "train.py").write_text(copy_trainer(str(bad), sleep=0))
    r = TrialRunner(cfg, progress=print).run("a model file that does not load")
    assert r["verdict"] == "failed" and "cannot be exported as data: _pickle.UnpicklingError" in r["reason"]
    assert "Traceback" in r["log_tail"] and "invalid load key" in r["log_tail"]


def test_job_over_its_time_limit_is_killed(tmp_path):
    ex = jobs.make_executor("slurm", tmp_path / "sub", timeout_min=0)
    ex.update_parameters(timeout_min=1)  # Slurm's own limit, to exercise its kill path
    job = ex.submit(time.sleep, 600)
    t0 = time.time()
    with pytest.raises(jobs.JobFailed, match="timed-out"):  # submitit's signal at the limit
        jobs.wait(job, poll_s=2)
    assert time.time() - t0 < 240
    assert sacct(job.job_id).split()[1] in ("TIMEOUT", "FAILED")


def test_cancelled_trial_is_failed(cfg, good_model):
    (cfg.root / "train" / "train.py").write_text(copy_trainer(str(good_model), sleep=300))
    result = {}
    t = threading.Thread(target=lambda: result.update(TrialRunner(cfg, progress=print).run("to be cancelled").to_json()))
    t.start()
    ledger = Ledger(cfg.store / "ledger.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (ledger.trials() and ledger.trials()[0].get("job_ids")):
        time.sleep(0.5)
    job_id = ledger.trials()[0]["job_ids"]["train"]
    time.sleep(2)
    subprocess.run(["scancel", job_id], check=True)
    t.join(timeout=180)
    assert result["verdict"] == "failed", result["reason"]
    assert "CANCELLED" in sacct(job_id)


def test_resources_are_passed_through(tmp_path):
    slurm = {"cpus_per_task": 2, "mem_gb": 1.5, "gpus_per_node": 1, "setup": ["export MLIPILOT_SETUP_RAN=yes"]}
    ex = jobs.make_executor("slurm", tmp_path / "sub", timeout_min=2, slurm=slurm)
    job = ex.submit(lambda: {k: os.environ.get(k) for k in
                             ("SLURM_CPUS_PER_TASK", "SLURM_MEM_PER_NODE", "SLURM_GPUS_ON_NODE", "MLIPILOT_SETUP_RAN")})
    env = jobs.wait(job)
    assert env == {"SLURM_CPUS_PER_TASK": "2", "SLURM_MEM_PER_NODE": "1536", "SLURM_GPUS_ON_NODE": "1",
                   "MLIPILOT_SETUP_RAN": "yes"}
    def job_env(stage: str, options: dict) -> tuple:
        ex = jobs.make_executor("slurm", tmp_path / stage, timeout_min=2, slurm=options, stage=stage)
        def inside() -> tuple:
            from mlipilot.md.pool import job_cores

            return os.environ.get("SLURM_CPUS_PER_TASK"), os.environ.get("SLURM_GPUS_ON_NODE"), job_cores()

        return jobs.wait(ex.submit(inside))

    # score and validate jobs: the training job's CPUs by default (the MD pool's workers), never a GPU
    assert job_env("score", slurm) == ("2", None, 2)
    assert job_env("validate", {**slurm, "score_cpus_per_task": 1}) == ("1", None, 1)
    assert job_env("label", slurm) == ("1", None, 1)  # one SCF per labelling job


def test_launcher_killed_mid_trial_reattaches(cfg, good_model):
    """kill -9 the launcher while Slurm trains; the next command re-attaches and finishes the verdict."""
    (cfg.root / "train" / "train.py").write_text(copy_trainer(str(good_model), sleep=15))
    proc = subprocess.Popen([sys.executable, "-m", "mlipilot.cli", "trial", "-m", "survives its launcher",
                             "--run", str(cfg.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = Ledger(cfg.store / "ledger.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (ledger.trials() and ledger.trials()[0].get("job_ids")):
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert ledger.trials()[0]["status"] == "submitted"
    repaired = TrialRunner(cfg, progress=print).recover_interrupted()
    (row,) = ledger.trials()
    assert repaired == [1] and row["status"] == "finished" and row["verdict"] == "accepted", row.get("reason")
    assert row["job_ids"]["train"] and "COMPLETED" in sacct(row["job_ids"]["train"])
    out = subprocess.run(["mlipilot", "log", str(cfg.root), "--json"], capture_output=True, text=True).stdout
    assert '"survives its launcher"' in out


def test_impossible_request_fails_fast(tmp_path):
    ex = jobs.make_executor("slurm", tmp_path / "sub", timeout_min=2, slurm={"cpus_per_task": 64})
    try:
        job = ex.submit(os.getpid)  # sbatch may refuse outright ...
    except Exception as e:
        assert "not available" in str(e) or "node configuration" in str(e), e
        return
    with pytest.raises(jobs.JobFailed, match="will never start"):  # ... or leave it pending forever
        jobs.wait(job)


def test_bench_launchers_are_slurm_jobs(tmp_path, fast_benchmark, good_model):
    """`mlipilot bench --executor slurm`: each run's launcher is an array job, its trials are jobs too."""
    from mlipilot.comparison import run_bench

    bench = tmp_path / "bench"
    shutil.copytree(fast_benchmark, bench)
    (bench / "workspace" / "train" / "train.py").write_text(copy_trainer(good_model))
    lines = []
    result = run_bench(str(bench), ["expert", "random"], seeds=1, iterations=1, out=tmp_path / "out",
                       executor="slurm", progress=lines.append)
    assert result["incomplete"] == [], lines
    table = result["table"]  # per run: the harness's baseline (accepted), then one agent iteration
    assert len(table) == 4 and set(table[table["trial_agent"] == "harness"]["verdict"]) == {"accepted"}
    launcher_ids = [e["job_id"] for e in result["manifest"]["runs"].values()]
    assert all("COMPLETED" in sacct(j) for j in launcher_ids)
    trial_jobs = result["table"]  # each trial's train and score jobs went through Slurm as well
    assert (trial_jobs["wall_queue"] >= 0).all()
