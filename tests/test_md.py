"""The checked MD runner (mlipilot.md): integrators yield steps, small checks decide, one loop runs
them, independent runs go to forked workers with the same results as in one process."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from mlipilot.md import (
    BondDeviation,
    HDetached,
    MinDistance,
    NonFinite,
    Protocol,
    ReferenceForce,
    TemperatureRunaway,
    fcc_cell,
    integrate,
    run_checked,
    sample,
)
from mlipilot.md.integrators import Ensemble, MDStep
from mlipilot.md.pool import run_all, run_each


def cu(n: int = 2) -> Atoms:
    return fcc_cell("Cu", 3.59, n)


def test_a_good_run_finishes_and_reports_what_its_checks_saw():
    run = run_checked(integrate(cu(), EMT(), Protocol((600.0, 600.0), 30, seed=1)),
                      [NonFinite(), MinDistance(1.8, every=10), TemperatureRunaway(3.0)])
    assert run.ok and run.steps == 30 and run.completed == 30 and run.reason is None
    assert 2.0 < run.figures["min_distance"] < 2.6 and 0 < run.figures["max_temperature_ratio"] < 3.0
    assert run.figures["cpu_s_per_step"] > 0 and run.figures["timed_steps"] == 25  # 5 warm-up steps untimed


def test_the_first_failing_check_stops_the_run_and_names_the_step():
    # LJ with a huge sigma pushes Cu apart: EMT as reference sees a large force error at the first sample
    run = run_checked(integrate(cu(), LennardJones(sigma=3.0, epsilon=0.5, rc=6.0), Protocol((300.0, 300.0), 40)),
                      [NonFinite(), ReferenceForce(EMT(), 100.0, every=10, label="emt")])
    assert not run.ok and run.steps == 10 and run.completed == 9
    assert run.reason.startswith("force error vs emt") and "at step 10" in run.reason


def test_a_model_that_raises_is_a_failed_run_not_a_crash():
    class Boom(EMT):
        calls = 0

        def calculate(self, *a, **k):
            Boom.calls += 1
            if Boom.calls > 4:
                raise FloatingPointError("exploded")
            super().calculate(*a, **k)

    run = run_checked(integrate(cu(), Boom(), Protocol((300.0, 300.0), 20)), [NonFinite()])
    assert not run.ok and "MD raised FloatingPointError: exploded at step" in run.reason


def test_molecule_checks_bond_and_hydrogen():
    h2o = Atoms("OH2", positions=[(0, 0, 0), (0.96, 0, 0), (-0.24, 0.93, 0)])
    moved = h2o.copy()
    moved.positions[1] = (4.0, 0, 0)  # an H far away: bond broken and H detached
    s = MDStep(3, 10, 300.0, 300.0, 0.0, np.zeros((3, 3)), moved)
    assert "bond O0-H1 changed by" in BondDeviation(h2o, 0.5).check(s)
    assert HDetached(2.5).check(s).startswith("H detached")
    assert BondDeviation(h2o, 0.5).check(MDStep(1, 10, 300.0, 300.0, 0.0, np.zeros((3, 3)), h2o)) is None


def test_forked_workers_give_the_same_runs_as_one_process():
    protocols = [Protocol((500.0, 500.0), 15, seed=s) for s in (0, 1, 2)]
    jobs = [lambda p=p: run_checked(integrate(cu(), EMT(), p), [NonFinite(), MinDistance(1.8)]) for p in protocols]
    serial, forked = list(run_all(jobs, cores=1)), list(run_all(jobs, cores=2))
    assert [(r.ok, r.steps, r.figures["min_distance"]) for r in serial] == \
           [(r.ok, r.steps, r.figures["min_distance"]) for r in forked]
    assert len({r.figures["min_distance"] for r in serial}) == 3  # different seeds, different runs


def test_run_each_yields_as_runs_finish_and_run_all_keeps_the_order(capfd):
    """Validation saves each check as it finishes: a slow first run does not hold back a fast second
    one; what a child prints reaches the output once (the parent's unwritten output is not repeated)."""
    import time

    def slow():
        time.sleep(1.0)
        return "slow"

    def fast():
        print("from the fast child")
        return "fast"

    print("parent, before the fork")
    assert [i for i, _ in run_each([slow, fast], cores=2)] == [1, 0]
    assert list(run_all([slow, fast], cores=2)) == ["slow", "fast"]
    out = capfd.readouterr().out
    assert out.count("parent, before the fork") == 1 and out.count("from the fast child") == 2, out


def test_a_worker_error_is_raised_in_the_parent():
    def bad():
        raise ValueError("harness bug")

    with pytest.raises(RuntimeError, match="harness bug"):
        list(run_all([bad, bad], cores=2))


def test_sample_keeps_frames_until_a_guard_stops_it():
    frames, run = sample(cu(), EMT(), Protocol((300.0, 300.0), 20), every=5)
    assert run.ok and [f.info["md_step"] for f in frames] == [5, 10, 15, 20] and frames[0].calc is None
    # a soft LJ lets the cell collapse: the close-contact guard stops it, no frame after the failure
    frames, run = sample(cu(), LennardJones(sigma=1.0, epsilon=2.0, rc=3.0),
                         Protocol((2000.0, 2000.0), 200, timestep_fs=5.0), every=1)
    assert not run.ok and len(frames) == run.completed < 200
    assert all(f.info["md_step"] <= run.completed for f in frames)


def test_npt_and_nve_integrators_yield_steps():
    npt = list(integrate(cu(), EMT(), Protocol((300.0, 300.0), 3, ensemble=Ensemble.NPT)))
    nve = list(integrate(cu(), EMT(), Protocol((300.0, 300.0), 3, ensemble=Ensemble.NVE)))
    assert [s.step for s in npt] == [1, 2, 3] and [s.step for s in nve] == [0, 1, 2, 3]


def test_sampling_stops_on_the_scorecards_guards():
    from pathlib import Path

    from mlipilot.md import ReferenceForce
    from mlipilot.scorecard.spec import load_spec
    from mlipilot.scorecard.stability_kinds import scorecard_guards

    spec = load_spec(Path(__file__).resolve().parents[1] / "scorecards" / "cu_emt.yaml")
    proto = Protocol((300.0, 300.0), 12)
    guards = scorecard_guards(spec, cu(), proto)
    assert [c.name for c in guards] == ["non_finite", "min_distance", "temperature_runaway"]
    assert any(isinstance(c, ReferenceForce) for c in scorecard_guards(spec, cu(), proto, reference=True))
    frames, run = sample(cu(), EMT(), proto, every=4, checks=guards)
    assert run.ok and len(frames) == 3


def test_max_force_stops_a_run_whose_forces_blow_up():
    from mlipilot.md import MaxForce

    good = run_checked(integrate(cu(), EMT(), Protocol((300.0, 300.0), 10)), [MaxForce(5.0)])
    assert good.ok and 0 < good.figures["max_force"] < 5.0
    bad = run_checked(integrate(cu(), LennardJones(sigma=3.0, epsilon=0.5, rc=6.0), Protocol((300.0, 300.0), 10)),
                      [MaxForce(5.0)])
    assert not bad.ok and bad.reason.startswith("force ") and bad.steps == 1


def test_job_cores_follows_the_affinity_and_the_caps(monkeypatch):
    import os

    from mlipilot.md.pool import job_cores

    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("MLIPILOT_MD_WORKERS", raising=False)
    assert job_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("MLIPILOT_MD_WORKERS", "1")
    assert job_cores() == 1
