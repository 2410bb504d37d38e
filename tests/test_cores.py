"""Training threads follow the cores a job holds (issue 37): claims split them, a dead job's claim
counts for nothing, a busy machine still trains on one thread."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import pytest

from mlipilot import cores


@pytest.fixture
def quiet(monkeypatch, tmp_path):
    """A private claims folder and a machine that samples as idle: the claims alone decide."""
    monkeypatch.setattr(cores.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(cores, "held_cores", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(cores, "idle_cores", lambda c, sample_s=0: float(len(c)))
    monkeypatch.delenv(cores.ENV, raising=False)
    return tmp_path / f"mlipilot-cores-{os.getuid()}"


def _claim(folder, pid: int, threads: int, on=(0, 1, 2, 3)) -> None:
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "threads": threads, "cores": list(on)}))


def test_claims_split_the_held_cores(quiet):
    first = cores.TrainingThreads()
    assert first.threads == 4 and first.claim.is_file()
    # a second job starting while the first trains gets what is left: at least one thread
    _claim(quiet, os.getppid(), 3)  # a live process (the test runner's parent) holding 3 of 4
    first.release()
    assert not list(quiet.glob("*.json"))[1:]  # released: only the planted claim is left
    second = cores.TrainingThreads()
    assert second.threads == 1
    second.release()
    second.release()  # idempotent


def test_a_dead_jobs_claim_and_another_cpuset_count_for_nothing(quiet):
    p = mp.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    _claim(quiet, p.pid, 4)  # killed without releasing
    _claim(quiet, os.getppid(), 4, on=(8, 9))  # a Slurm job on other cores of the node
    t = cores.TrainingThreads()
    assert t.threads == 4
    assert not (quiet / f"{p.pid}.json").exists()  # swept
    t.release()


def test_the_environment_fixes_the_count(quiet, monkeypatch):
    monkeypatch.setenv(cores.ENV, "3")
    t = cores.TrainingThreads()
    assert t.threads == 3 and t.claim is None


def _spin(stop):
    while not stop.is_set():
        pass


def test_a_busy_machine_trains_on_one_thread(monkeypatch, tmp_path):
    """As many busy processes as cores: the idle sample says so, and training keeps one thread."""
    monkeypatch.setattr(cores.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.delenv(cores.ENV, raising=False)
    held = cores.held_cores()
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    spinners = [ctx.Process(target=_spin, args=(stop,)) for _ in held]
    for s in spinners:
        s.start()
    try:
        time.sleep(0.3)
        assert cores.idle_cores(held, 0.5) < 0.5 + 0.25 * len(held)
        t = cores.TrainingThreads()
        assert t.threads <= max(1, len(held) // 4)
        t.release()
    finally:
        stop.set()
        for s in spinners:
            s.join()


@pytest.mark.slow  # an init and a trial through the harness (copied model)
def test_train_py_gets_the_threads_and_the_trial_says_so(tmp_path, fast_benchmark, good_model, monkeypatch):
    """The sandboxed train.py sees OMP_NUM_THREADS (and MKL's, OpenBLAS's) at the job's count; the
    export step and the scorer stay on one; the progress line names the count."""
    from mlipilot_testkit import copy_trainer

    from mlipilot.run_config import load_run_config
    from mlipilot.rundir import init_run
    from mlipilot.trial import TrialRunner

    monkeypatch.setenv(cores.ENV, "2")
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="local", progress=lambda s: None)
    (root / "train" / "train.py").write_text(
        "import os\nprint('threads', os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])\n"
        + copy_trainer(good_model))
    lines: list[str] = []
    record = TrialRunner(load_run_config(root), progress=lines.append).run("threads")
    assert record.verdict is not None, lines
    log = (tmp_path / "run.mlipilot-store" / "trials" / "0001" / "train.log").read_text()
    assert "threads 2 2" in log
    assert any(x.strip().startswith("trained in") and "on 2 threads" in x for x in lines), lines
    assert record.train_threads == 2  # in the ledger: composites at different counts differ at ~1e-7 (speed.py)


def test_a_launcher_running_k_trainings_gives_each_its_share(quiet):
    """--parallel 2 on 4 cores: both candidates start together, neither takes all four (measured on 2
    cores: a 2-thread training with a 1-thread one started beside it ran 9x slower, 501 vs 55 s)."""
    with cores.sharing(2):
        first = cores.TrainingThreads()
        second = cores.TrainingThreads()
        with cores.sharing(2):  # a bench of parallel runs, each with parallel candidates
            third = cores.TrainingThreads()
    assert (first.threads, second.threads, third.threads) == (2, 2, 1)
    assert cores.SHARE_ENV not in os.environ
    assert first.env() == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    for t in (first, second, third):
        t.release()


def test_no_writable_temporary_folder_still_decides(monkeypatch, tmp_path):
    """A user whose temporary folder cannot be written (or holds another user's folder) still trains."""
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / f"mlipilot-cores-{os.getuid()}").write_text("not a folder")
    monkeypatch.setattr(cores.tempfile, "gettempdir", lambda: str(ro))
    monkeypatch.setattr(cores, "held_cores", lambda: {0, 1})
    monkeypatch.setattr(cores, "idle_cores", lambda c, sample_s=0: 2.0)
    monkeypatch.delenv(cores.ENV, raising=False)
    t = cores.TrainingThreads()
    assert t.threads == 2 and t.claim is None
    t.release()


def test_a_planted_claims_folder_is_not_used(monkeypatch, tmp_path):
    """In a shared /tmp another user can make the folder first (or a link to elsewhere): not used."""
    monkeypatch.setattr(cores.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(cores, "idle_cores", lambda c, sample_s=0: 1.0)
    monkeypatch.delenv(cores.ENV, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "1.json").write_text('{"pid": 999999999, "threads": 1, "cores": [0]}')
    (tmp_path / f"mlipilot-cores-{os.getuid()}").symlink_to(elsewhere)
    t = cores.TrainingThreads()
    assert t.threads == 1 and t.claim is None and (elsewhere / "1.json").exists()  # nothing swept there
    (tmp_path / f"mlipilot-cores-{os.getuid()}").unlink()
    (tmp_path / f"mlipilot-cores-{os.getuid()}").mkdir(mode=0o777)
    os.chmod(tmp_path / f"mlipilot-cores-{os.getuid()}", 0o777)  # world-writable: anyone could plant claims
    t = cores.TrainingThreads()
    assert t.claim is None
