"""Table-driven verdict logic: integrity -> smoke -> feasibility -> composite beyond the margin."""


import pytest
import yaml

from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.verdict import assess, decide

SPEC = {
    "name": "t", "element": "Cu", "lattice_a": 3.59, "noise_margin": 0.02,
    "constraints": [{"metric": "energy_rmse", "max": 10.0, "unit": "meV/atom"},
                    {"metric": "md_failed_runs", "max": 0, "scale": 1, "unit": "count"}],
    "composite": {"terms": [{"metric": "energy_rmse", "scale": 10.0}, {"metric": "force_rmse", "scale": 50.0}]},
    "stability": {"runs": [], "min_distance_A": 1.8, "max_temperature_factor": 2.0},
    "throughput": {"supercell": 2, "steps": 5},
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    p = tmp_path_factory.mktemp("spec") / "s.yaml"
    p.write_text(yaml.safe_dump(SPEC))
    return load_spec(p)


def m(e, f=50.0, md=0):
    return {"energy_rmse": e, "force_rmse": f, "md_failed_runs": md}


CASES = [
    # (candidate metrics, incumbent metrics, integrity problem, job error, verdict, reason starts with)
    (m(5), m(50), "data/train.xyz changed", None, "rejected", "integrity"),
    (None, m(50), None, "training failed: exit 1", "failed", "smoke"),
    (m(50), None, None, None, "accepted", "baseline"),
    (m(5), m(50), None, None, "accepted", "first feasible"),
    (m(30), m(50), None, None, "accepted", "less constraint violation"),
    (m(49.9), m(50), None, None, "rejected", "violation not reduced"),
    (m(5, md=1), m(50), None, None, "accepted", "less constraint violation"),
    (m(15), m(5), None, None, "rejected", "infeasible"),
    (m(4), m(5), None, None, "accepted", "composite improved"),
    (m(5, f=49.5), m(5), None, None, "rejected", "composite"),
    (m(float("nan")), m(5), None, None, "rejected", "infeasible"),
]


@pytest.mark.parametrize("cand,inc,integrity,job_error,verdict,reason", CASES)
def test_decide(spec, cand, inc, integrity, job_error, verdict, reason):
    v = decide(assess(cand, spec) if cand else None, assess(inc, spec) if inc else None, spec,
               integrity_problem=integrity, job_error=job_error)
    assert v.verdict == verdict
    assert v.reason.startswith(reason), v.reason


def test_assess_normalises_violations(spec):
    a = assess(m(15, md=2), spec)
    assert a.violations == {"energy_rmse": pytest.approx(0.5), "md_failed_runs": pytest.approx(2.0)}
    assert not a.feasible and a.total_violation == pytest.approx(2.5)
    assert assess(m(5), spec).composite == pytest.approx(0.5 + 1.0)


def test_measured_noise_widens_the_margin_and_flags_close_calls(spec):
    from mlipilot.scorecard.verdict import Noise

    noise = Noise(sigma_composite=0.1, sigma_violation=0.0, z=2.0, confirm=3.0)
    inc = assess(m(5), spec)  # composite 1.5: the 2 % margin alone would be 0.03
    within = decide(assess(m(4), spec), inc, spec, noise=noise)  # gain 0.1 < 2 sigma
    assert within.verdict == "rejected" and "2 sigma = 0.2" in within.reason and within.margin == pytest.approx(0.2)
    close = decide(assess(m(2.5), spec), inc, spec, noise=noise)  # 2 sigma < gain 0.25 < 3 sigma
    assert close.verdict == "accepted" and close.close
    clear = decide(assess(m(1), spec), inc, spec, noise=noise)  # gain 0.4 > 3 sigma
    assert clear.verdict == "accepted" and not clear.close
    assert decide(assess(m(4), spec), inc, spec).verdict == "accepted"  # without a measurement: 2 %
