from pathlib import Path

import pytest
import yaml
from mlipilot_testkit import exported

from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.evaluate import SmokeError, score_model
from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.verdict import assess

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "scorecards" / "cu_emt.yaml"


def test_shipped_spec_loads():
    spec = load_spec(SHIPPED)
    assert {c.metric for c in spec.constraints} >= {"energy_rmse", "force_rmse", "md_failed_runs"}
    assert len(spec.sha256) == 64
    ramp = [r for r in spec.stability.runs if r.temperature_K[0] != r.temperature_K[1]]
    assert ramp and ramp[0].temperature_K == (300.0, 3000.0)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.pop("constraints"), "field 'constraints': missing"),
    (lambda d: d["constraints"][0].update(metric="energy_rsme"), "constraints[0].metric"),
    (lambda d: d["constraints"][0].pop("max"), "constraints[0].max"),
    (lambda d: d["stability"]["runs"][0].update(steps="many"), "stability.runs[0].steps"),
    (lambda d: d["composite"]["terms"][0].update(scale=0), "composite.terms[0].scale"),
])
def test_bad_spec_names_file_and_field(tmp_path, mutate, needle):
    d = yaml.safe_load(SHIPPED.read_text())
    mutate(d)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True))
    with pytest.raises(MLIPilotError) as e:
        load_spec(p)
    assert str(p) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nconstraints: [\n  - oops: {\n")
    with pytest.raises(MLIPilotError, match=r"broken.yaml:.*not valid YAML"):
        load_spec(p)


def test_missing_model_is_a_smoke_failure(tmp_path, small_data):
    with pytest.raises(SmokeError, match="no exported model"):
        score_model(tmp_path / "nope.model", load_spec(SHIPPED), small_data["holdout"], progress=lambda s: None)


@pytest.mark.slow
def test_good_model_passes_stability_untrained_fails(good_model, untrained_model, default_data):
    # good_model is tests/data/cu_fix.model (training seed 1) unless MLIPILOT_TRAIN_TEST_MODELS retrains it.
    # Training noise, measured with its config for training seeds 1, 2, 3 (one thread, 2-core CPU)
    # on the shipped scorecard: E 11.8-17.5 meV/atom, F 59-64 meV/Å, 0 failed MD runs (force error vs EMT
    # 147-157 meV/Å of 400 allowed, closest approach 2.10-2.13 Å of 1.8), so the stability assertions
    # hold with a wide margin. Not asserted: feasibility, since E's bound here (20) is inside that spread.
    spec = load_spec(SHIPPED)
    good_r = score_model(exported(good_model), spec, default_data["holdout"], progress=print)
    bad_r = score_model(exported(untrained_model), spec, default_data["holdout"], progress=print)
    good, bad = good_r.metrics, bad_r.metrics
    print("good", {k: good[k] for k in ("energy_rmse", "force_rmse", "md_failed_runs")}, good_r.timings)
    print("untrained", {k: bad[k] for k in ("energy_rmse", "force_rmse", "md_failed_runs")})
    assert good["md_failed_runs"] == 0
    assert all(r.ok for r in good_r.md_runs.values()) and not good_r.failed_runs()
    assert good["force_rmse"] < bad["force_rmse"] and good["energy_rmse"] < bad["energy_rmse"]
    bad_a = assess(bad, spec)
    assert not bad_a.feasible
    assert {"energy_rmse", "force_rmse", "md_failed_runs"} & set(bad_a.violations)
    assert assess(good, spec).total_violation < bad_a.total_violation
    assert good["steps_per_second"] > 0 and good["cpu_seconds_per_step"] > 0
    assert "energy_rmse_bulk108_strain" in good and "force_rmse_md1500" in good
    assert all(isinstance(v, (int, float)) or v is None for v in good.values())  # scalars only: runs and timings apart
    assert good_r.to_json()["md_runs"]["nvt1000_108"]["ok"] is True  # the score file's flat shape
    assert good_r.timings["total"] > 0  # a time, reported; targets live in benchmarks/


def test_score_model_returns_a_typed_result_with_a_portable_throughput_ratio(tmp_path, untrained_model, small_data):
    """An untrained model scored on the fast scorecard plus the relative throughput bound: scalar
    metrics, MD runs and timings apart, the flat score-file shape, and the ratio to the harness's
    reference MACE measured in the same job (the untrained model is that architecture family, so the
    ratio is near 1 whatever the CPU; measured 0.8-1.3 on a loaded 2-core box)."""
    from mlipilot_testkit import FAST_SCORECARD

    from mlipilot.scorecard.result import ScoreResult

    card = dict(FAST_SCORECARD, constraints=[*FAST_SCORECARD["constraints"],
                                             {"metric": "throughput_ratio", "min": 0.5, "unit": "1"}])
    path = tmp_path / "scorecard.yaml"
    path.write_text(yaml.safe_dump(card, allow_unicode=True))
    lines: list[str] = []
    r = score_model(exported(untrained_model), load_spec(path), small_data["holdout"], progress=lines.append)
    assert isinstance(r, ScoreResult) and set(r.md_runs) == {"nvt1000_32", "ramp_32"}
    assert all(isinstance(v, (int, float)) or v is None for v in r.metrics.values())
    assert r.metrics["md_failed_runs"] == len(r.failed_runs()) and {"stability", "total"} <= set(r.timings)
    assert 0.2 < r.metrics["throughput_ratio"] < 5.0, lines
    assert any("throughput_ratio" in line for line in lines)
    again = ScoreResult.from_json(r.to_json())
    assert again.metrics == r.metrics and {k: v.reason for k, v in again.md_runs.items()} == \
        {k: v.reason for k, v in r.md_runs.items()}
