"""A killed launcher loses no work with the local executor (issue 26): `kill -9` the launcher of
`mlipilot run` (not its job) mid-training, restart the same command, and the trial is decided from
the job that kept running; where the job died too, the trial is recorded interrupted and retried.
Neither costs an iteration of the budget, and no second training runs beside the first."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import git
import pytest
from mlipilot_testkit import commit_trainer, copy_trainer

from mlipilot import jobs
from mlipilot.agent_loop import spent
from mlipilot.executors.local import HarnessLocalExecutor, attached_job, controller_folder, kill_tree, live_controllers
from mlipilot.ledger import Ledger
from mlipilot.records import FailureKind
from mlipilot.run_config import load_run_config
from mlipilot.run_lock import holder

slow = pytest.mark.slow  # whole `mlipilot run`s through local jobs, each trial scored (MD)

SLEEP_S = 25  # the expert's first step trains this long: time to kill its launcher mid-training
# the expert's first step (loss re-weighting) sets energy_weight 100; the shipped config has 1.0
SLOW_WHEN_REWEIGHTED = ("import pathlib, time\n"
                        "if 'energy_weight: 100' in pathlib.Path(__file__).with_name('config.yaml').read_text():\n"
                        f"    time.sleep({SLEEP_S})\n")
# metrics that do not depend on the machine's load (throughput does): the same model scores the same
SAME_MODEL_METRICS = ("energy_rmse", "force_rmse", "md_failed_runs")


def mlipilot(*args: str) -> list[str]:
    exe = shutil.which("mlipilot")
    return [exe, *args] if exe else [sys.executable, "-m", "mlipilot.cli", *args]


RUN = ("run", "--agent", "expert", "--iterations", "1")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def run(tmp_path, fast_benchmark, good_model):
    """`mlipilot init --executor local`; the shipped train.py writes the known model at once (the
    harness's baseline), and after SLEEP_S seconds once the expert re-weighted the loss."""
    root = tmp_path / "run"
    subprocess.run(mlipilot("init", str(fast_benchmark), str(root), "--executor", "local"), env=ENV, check=True,
                   capture_output=True)
    commit_trainer(root, SLOW_WHEN_REWEIGHTED + copy_trainer(str(good_model)))
    return load_run_config(root)


def launch(cfg, log: Path) -> subprocess.Popen:
    """`mlipilot run` in the run directory, in a session of its own (its process tree is told apart
    from the test's; its jobs' controllers are its children until it dies)."""
    return subprocess.Popen(mlipilot(*RUN), cwd=cfg.root, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def training_of_trial_2(ledger: Ledger, proc: subprocess.Popen, log: Path, timeout_s: float = 150) -> int:
    """The pid of trial 2's training job (a local job's id) once the launcher recorded it, and the job
    is some seconds into its SLEEP_S of training."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        row = next((t for t in ledger.trials() if t["trial"] == 2), None)
        if row and (row.get("job_ids") or {}).get("train"):
            assert row["status"] == "submitted"
            time.sleep(3)
            return int(row["job_ids"]["train"])
        assert proc.poll() is None, log.read_text()
        time.sleep(0.3)
    raise AssertionError(f"trial 2's training job never started:\n{log.read_text()}")


def kill_launcher(proc: subprocess.Popen, job_pid: int, train_folder: Path) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert controller_folder(job_pid) == train_folder.resolve()  # the job lives on without its launcher


class Sampler:
    """Every live local-job controller under the store, sampled every 0.1 s while the block runs."""

    def __init__(self, store: Path):
        self.store, self.samples, self._stop = store, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(live_controllers(self.store))
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def finished_rows_per_trial(store: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in Ledger(store / "ledger.jsonl").rows():
        if "trial" in r and r.get("status") == "finished":
            counts[r["trial"]] = counts.get(r["trial"], 0) + 1
    return counts


@slow
def test_killed_launcher_reattaches_to_the_surviving_job(run, tmp_path):
    """kill -9 the launcher mid-training; the same command again re-attaches to the job that kept
    training, decides the trial from it (the metrics an uninterrupted run gives), charges the budget
    once, never runs a second training beside it, and a third launcher meanwhile is refused."""
    cfg, t0 = run, time.time()
    ledger = Ledger(cfg.store / "ledger.jsonl")
    first = launch(cfg, tmp_path / "first.log")
    job_pid = training_of_trial_2(ledger, first, tmp_path / "first.log")
    train_folder = cfg.store / "trials" / "0002" / "submitit"
    kill_launcher(first, job_pid, train_folder)
    assert [t["status"] for t in ledger.trials()] == ["finished", "submitted"]

    again = launch(cfg, tmp_path / "again.log")
    with Sampler(cfg.store) as sampler:
        t_again, deadline = time.time(), time.time() + 60  # the restarted launcher takes the run's lock ...
        while (holder(cfg.store) or {}).get("pid") != again.pid and time.time() < deadline:
            assert again.poll() is None, (tmp_path / "again.log").read_text()
            time.sleep(0.2)
        assert (holder(cfg.store) or {}).get("pid") == again.pid
        print(f"the restarted launcher held the run after {time.time() - t_again:.1f} s")
        assert controller_folder(job_pid) is not None, "the job ended before a third launcher could be tried"
        third = subprocess.run(mlipilot(*RUN), cwd=cfg.root, env=ENV, capture_output=True, text=True, timeout=60)
        try:
            again.wait(timeout=180)
        finally:
            if again.poll() is None:
                again.kill()
    log = (tmp_path / "again.log").read_text()
    # ... so a third is refused in one line naming it, and changes nothing
    assert third.returncode == 2, third.stderr
    assert third.stderr.count("\n") == 1 and "another launcher is working on this run" in third.stderr
    assert f"pid {again.pid}" in third.stderr and third.stdout == ""
    assert again.returncode == 0, log
    assert "re-attaching to job(s)" in log

    trials = ledger.trials()
    assert [t["trial"] for t in trials] == [1, 2], log  # no third trial: the budget of 1 was not charged twice
    baseline, row = trials
    assert row["status"] == "finished" and row["verdict"] in ("accepted", "rejected"), row.get("reason")
    assert row["job_ids"]["train"] == str(job_pid)  # re-attached, not trained again
    assert row["failure"] is None and row["metrics"]
    for m in SAME_MODEL_METRICS:  # the same model as the baseline's: what an uninterrupted run scores
        assert row["metrics"][m] == baseline["metrics"][m], m
    assert spent(ledger.rows()).iterations == 1
    assert [r["iterations"] for r in ledger.rows() if r.get("event") == "run_end"] == [1]
    assert finished_rows_per_trial(cfg.store) == {1: 1, 2: 1}  # one verdict per trial
    # never two jobs at once: the surviving training until it ended, then its scoring; no second training
    samples = sampler.samples
    assert samples and max(len(s) for s in samples) <= 1
    assert job_pid in samples[0]  # re-attached while it still trained
    last_training = max(i for i, s in enumerate(samples) if job_pid in s)
    others = {pid: i for i, s in enumerate(samples) for pid in s if pid != job_pid}
    score_jobs = {int(i) for stage, i in row["job_ids"].items() if stage == "score"}  # none: the train job scores
    assert set(others) <= score_jobs and all(i > last_training for i in others.values())
    assert len([r for r in ledger.rows() if r.get("event") == "run_start"]) == 2  # the refused launcher wrote nothing
    assert not live_controllers(cfg.store)
    assert ledger.verify() is None
    print(f"test took {time.time() - t0:.0f} s")


@slow
def test_job_killed_with_its_launcher_is_interrupted_and_retried(run, tmp_path):
    """kill -9 the launcher and its job: the same command again records the trial `interrupted`
    (not a spent iteration), keeps its commit under refs/mlipilot/rejected/, and retries the step."""
    cfg, t0 = run, time.time()
    ledger = Ledger(cfg.store / "ledger.jsonl")
    first = launch(cfg, tmp_path / "first.log")
    job_pid = training_of_trial_2(ledger, first, tmp_path / "first.log")
    kill_launcher(first, job_pid, cfg.store / "trials" / "0002" / "submitit")
    kill_tree(job_pid)
    deadline = time.time() + 10
    while controller_folder(job_pid) is not None and time.time() < deadline:
        time.sleep(0.1)
    assert controller_folder(job_pid) is None and not live_controllers(cfg.store)
    killed = ledger.trials()[1]
    assert killed["status"] == "submitted"

    again = launch(cfg, tmp_path / "again.log")
    try:
        again.wait(timeout=180)
    finally:
        if again.poll() is None:
            again.kill()
    log = (tmp_path / "again.log").read_text()
    assert again.returncode == 0, log

    trials = ledger.trials()
    assert [t["trial"] for t in trials] == [1, 2, 3], log
    baseline, interrupted, retried = trials
    assert interrupted["verdict"] == "failed" and interrupted["failure"] == str(FailureKind.INTERRUPTED), interrupted
    assert interrupted["job_ids"]["train"] == str(job_pid) and not interrupted.get("metrics")
    assert interrupted["reason"].startswith("interrupted: the launcher stopped before the verdict"), interrupted
    assert "recorded as interrupted; it does not count against the budget" in log
    assert retried["hypothesis"] == interrupted["hypothesis"] and retried["agent"] == "expert"
    assert retried["status"] == "finished" and retried["verdict"] in ("accepted", "rejected"), retried.get("reason")
    assert retried["failure"] is None and retried["job_ids"]["train"] != str(job_pid)
    for m in SAME_MODEL_METRICS:
        assert retried["metrics"][m] == baseline["metrics"][m], m
    assert spent(ledger.rows()).iterations == 1  # the interrupted trial is not charged
    assert finished_rows_per_trial(cfg.store) == {1: 1, 2: 1, 3: 1}
    # git: the interrupted trial's commit kept, the retry started from the same parent
    repo = git.Repo(cfg.root)
    assert repo.commit("refs/mlipilot/rejected/2").hexsha == interrupted["commit"]
    assert repo.commit(interrupted["commit"]).parents[0].hexsha == interrupted["parent_commit"] == killed["parent_commit"]
    assert retried["parent_commit"] == interrupted["parent_commit"] == baseline["commit"]
    assert repo.active_branch.name == cfg.branch and not repo.is_dirty(untracked_files=True)
    expected_head = retried["commit"] if retried["verdict"] == "accepted" else baseline["commit"]
    assert repo.head.commit.hexsha == expected_head
    assert not live_controllers(cfg.store)
    assert ledger.verify() is None
    print(f"test took {time.time() - t0:.0f} s")


def started(job_id: str, under: Path) -> None:
    """Until the new controller shows its command line (empty for a moment after exec)."""
    deadline = time.time() + 20
    while int(job_id) not in live_controllers(under) and time.time() < deadline:
        time.sleep(0.05)


def test_attached_local_job_follows_the_controller(tmp_path):
    """What a restarted launcher sees of a local job it did not start: running while its controller
    serves the folder, then its result; interrupted (and not cancellable) once its process is gone."""
    folder = tmp_path / "submitit"
    ex = HarnessLocalExecutor(folder)
    ex.update_parameters(timeout_min=2)
    job = ex.submit(subprocess.check_output, ["sh", "-c", "sleep 4; echo trained"])
    started(job.job_id, tmp_path)
    seen = attached_job(folder, job.job_id)
    assert seen.state == "RUNNING" and not seen.done() and live_controllers(tmp_path) == {int(job.job_id): folder}
    assert jobs.wait(seen, poll_s=0.2) == b"trained\n"
    assert attached_job(folder, job.job_id).state == "FINISHED"  # from its result file, the process gone or not

    doomed = ex.submit(subprocess.check_output, ["sleep", "60"])
    started(doomed.job_id, tmp_path)
    attached_job(folder, doomed.job_id).cancel()  # kills the controller and its task
    doomed.wait()  # reaps the controller: this test started it
    gone = attached_job(folder, doomed.job_id)
    assert gone.state == "INTERRUPTED" and not live_controllers(tmp_path)
    with pytest.raises(jobs.JobFailed) as e:
        jobs.wait(gone)
    assert e.value.kind == FailureKind.INTERRUPTED
