"""The labelling budget under concurrency (issue 33, items 2 and 3): two processes' data actions on one
run used to overspend it (340/200) and share an id and a job folder (the second deleted the first's).
Now every data action holds the run's lock: the second is refused in one line naming the holder, the
budget is reserved before a label job and settled after, and a launcher killed mid-job leaves a
reservation the next action settles (what the job labelled charged once, the rest released)."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import time

import pytest
from mlipilot_testkit import ROOT, as_launcher, give_to_unprivileged, launchers

# one data action in its own process: label selection N, each reference call slowed down
LABEL = textwrap.dedent("""
    import json, sys, time
    from mlipilot.data_actions import DataActions, DataRefusal, labelling
    from mlipilot.run_config import load_run_config
    real = labelling.compute
    def slow(atoms, reference, params=None):
        time.sleep(float(sys.argv[3]))
        return real(atoms, reference, params)
    labelling.compute = slow
    acts = DataActions(load_run_config(sys.argv[1]), progress=lambda s: None)
    try:
        print(json.dumps({"calls": acts.label(int(sys.argv[2])).calls}))
    except DataRefusal as e:
        print(json.dumps({"refused": str(e)}))
""")


def _run_with_two_selections(tmp_path, fast_benchmark, monkeypatch, calls: int = 8):
    from test_data_actions import make_run

    from mlipilot.data_actions import DataActions

    cfg = make_run(tmp_path, fast_benchmark, monkeypatch, calls=calls)
    acts = DataActions(cfg, progress=lambda s: None)
    pool = acts.sample("rattle*", driver="reference", method="rattle", n_frames=12, seed=3)
    a = acts.select(pool, "random", n=6, seed=1)
    b = acts.select(pool, "random", n=6, seed=2)
    return cfg, acts, a.id, b.id


def _start(launcher, cfg, selection, delay):
    import subprocess

    from mlipilot_testkit import unprivileged_prefix

    prefix = [] if launcher == "self" else unprivileged_prefix()
    if prefix is None:
        pytest.skip("cannot run as an unprivileged user here")
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "HOME": "/tmp", "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "1"}
    import os
    return subprocess.Popen([*prefix, sys.executable, "-c", LABEL, str(cfg.root), str(selection), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            env={**os.environ, **env})


def _wait_for_reservation(acts, proc, timeout=120):
    t0 = time.time()
    while not any(r.action == "reserve" for r in acts.rows()):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.1)


@pytest.mark.slow  # an init and two labelling processes
@pytest.mark.parametrize("launcher", launchers())
def test_two_processes_cannot_overspend_or_share_a_job(launcher, tmp_path, fast_benchmark, monkeypatch):
    cfg, acts, sel_a, sel_b = _run_with_two_selections(tmp_path, fast_benchmark, monkeypatch, calls=8)
    if launcher != "self":
        give_to_unprivileged(tmp_path)
    first = _start(launcher, cfg, sel_a, 0.5)  # 6 labels, 3 s
    _wait_for_reservation(acts, first)
    assert acts.budget().calls_left == 2  # the running job's 6 calls are held
    second = as_launcher(launcher, [sys.executable, "-c", LABEL, str(cfg.root), str(sel_b), "0"], cwd="/",
                         env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}, timeout=120)
    got_b = json.loads(second.stdout.strip().splitlines()[-1])
    out, err = first.communicate(timeout=120)
    got_a = json.loads(out.strip().splitlines()[-1])
    assert got_a == {"calls": 6}, err[-2000:]
    assert "another launcher is working on this run" in got_b["refused"] and "label" in got_b["refused"]
    b = acts.budget()
    assert b.calls_spent == 6 and b.calls_reserved == 0 and b.calls_spent <= b.calls
    # one job folder per label, never deleted by the second process
    assert sorted(p.name for p in (cfg.store / "data" / "jobs").glob("label-*") if p.is_dir()) == ["label-0001"]
    assert (cfg.store / "data" / "labelled" / "0001.xyz").is_file()


@pytest.mark.slow  # an init and a killed labelling process
@pytest.mark.parametrize("launcher", launchers())
def test_a_killed_launcher_reservation_is_charged_or_released_never_both(launcher, tmp_path, fast_benchmark,
                                                                         monkeypatch):
    cfg, acts, sel_a, sel_b = _run_with_two_selections(tmp_path, fast_benchmark, monkeypatch, calls=8)
    if launcher != "self":
        give_to_unprivileged(tmp_path)
    proc = _start(launcher, cfg, sel_a, 1.0)
    _wait_for_reservation(acts, proc)
    cache = next((cfg.store / "data" / "label_cache").iterdir())
    t0 = time.time()
    while len(list(cache.glob("*.json"))) < 2:  # two labels done, the third under way
        assert time.time() - t0 < 60 and proc.poll() is None
        time.sleep(0.05)
    import os

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(cache.glob("*.json")))
    assert acts.budget().calls_reserved == 6  # held until someone settles it
    # the next action (any) settles: the labels the dead job finished are charged once, the rest released
    lab = acts.label(sel_a)
    b = acts.budget()
    assert b.calls_reserved == 0 and b.calls_spent == 6 and lab.calls == 6 - done and lab.cached == done
    settle = [r for r in acts.rows() if r.action == "label" and r.reservation == 1]
    assert len(settle) == 1 and settle[0].calls == done
    assert len({k for r in acts.rows() for k in r.charged_keys}) == sum(len(r.charged_keys) for r in acts.rows())
