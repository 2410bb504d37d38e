"""`mlipilot bench` (expert, random, a scripted LLM × 2 seeds) end to end with each run's best model
validated, the results table, and `mlipilot report` rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
from mlipilot_testkit import assert_figures_render_in_chromium, surrogate_trainer, with_validation

from fake_llm_server import FakeLLMServer
from mlipilot.comparison import run_bench
from mlipilot.ledger import Ledger
from mlipilot.report import write_report

pytestmark = pytest.mark.slow  # every test reads one bench of several runs, each with trials and validation

# A stand-in trainer (mlipilot_testkit.surrogate_trainer): energy_weight >= 100 (the known fix) yields the
# trained model, anything else the untrained one. Real training is covered elsewhere; here the bench
# machinery is under test.


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory, fast_benchmark, good_model, untrained_model):
    bench = tmp_path_factory.mktemp("bench_def") / "cu_surrogate"
    shutil.copytree(fast_benchmark, bench)
    (bench / "workspace" / "train" / "train.py").write_text(surrogate_trainer(good_model, untrained_model))
    with_validation(bench)  # the tiny spec: a few seconds per model
    out = tmp_path_factory.mktemp("bench_out")
    script = [{"tool": "edit_file", "args": {"path": "train/config.yaml", "old_text": "energy_weight: 1.0",
                                             "new_text": "energy_weight: 100.0"}},
              {"tool": "run_experiment", "args": {"hypothesis": "weight energies more"}}]
    with FakeLLMServer(script, cycle=True) as server:
        result = run_bench(str(bench), ["expert", "random", "openai/scripted"], seeds=2, iterations=3, out=out,
                           executor="debug", api_base=server.api_base, validate=True)
    return out, result, bench, server


def test_bench_table_schema_and_identical_start(bench_dir):
    out, result, _, _ = bench_dir
    assert result["incomplete"] == []
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 3 * 2 * (1 + 3) and set(df["agent"]) == {"expert", "random", "openai/scripted"}
    for col in ("agent", "seed", "iteration", "verdict", "composite", "best_so_far", "feasible_so_far",
                "tokens_in", "tokens_out", "cost", "tool_errors", "llm_calls", "job_failed", "job_timeout",
                "wall_llm", "wall_queue", "wall_train", "wall_score", "harness_hash", "scorecard_hash",
                "metric_energy_rmse", "metric_force_rmse"):
        assert col in df.columns, col
    assert pd.read_csv(out / "results.csv").shape == df.shape
    assert df["harness_hash"].nunique() == 1 and df["scorecard_hash"].nunique() == 1
    expert = df[df.agent == "expert"]
    assert expert.groupby("seed")["feasible_so_far"].last().all()  # the fix is found in both seeds
    by_agent = df[df.trial_agent != "harness"]  # each run's baseline is the harness's: no tokens
    assert (by_agent[by_agent.agent == "openai/scripted"]["tokens_in"] > 0).all()
    assert (df[df.agent != "openai/scripted"]["tokens_in"] == 0).all()
    manifest = json.loads((out / "bench.json").read_text())
    assert manifest["start"]["baseline"] and len(manifest["runs"]) == 6


def test_each_runs_final_best_is_validated(bench_dir):
    out, result, _, _ = bench_dir
    df = pd.read_csv(out / "results.csv")
    manifest = json.loads((out / "bench.json").read_text())
    for (agent, seed), g in df.groupby(["agent", "seed"]):
        best = g[g["verdict"] == "accepted"].iloc[-1]
        assert g["validated"].notna().sum() == 1 and pd.notna(best["validated"]), (agent, seed)
        entry = manifest["runs"][best["run"]]
        assert "validation_error" not in entry and entry["validation"]["trial"] == best["trial"]
        assert entry["validation"]["passed"] == bool(best["validated"])
        failed = "" if pd.isna(best["validation_failed"]) else best["validation_failed"]  # csv: "" reads as NaN
        assert failed == ",".join(entry["validation"]["failed_checks"])
        if best["feasible"]:  # the trained model (the expert's fix): it passes the tiny spec too
            assert bool(best["validated"]), (agent, seed, failed)
    summ = pd.read_csv(out / "summary.csv").set_index("agent")
    assert (summ["validated_seeds"] == 2).all()
    assert summ.loc["expert", "frac_validated"] == 1.0 and summ.loc["expert", "feasible_seeds"] == 2


def test_bench_resumes_and_skips_finished_runs(bench_dir):
    out, _, bench, server = bench_dir
    lines = []
    ledger = out / "runs" / "expert-s0.mlipilot-store" / "ledger.jsonl"
    before = ledger.read_text()
    result = run_bench(str(bench), ["expert"], seeds=2, iterations=3, out=out, executor="debug",
                       progress=lines.append, validate=True)
    assert sum("already finished" in line for line in lines) == 2
    assert sum("validated earlier" in line for line in lines) == 6  # every finished run of the bench, not redone
    assert ledger.read_text() == before
    assert len(result["table"]) == 24  # 2 runs x (the harness's baseline + 3 iterations), 3 agents


def test_incomplete_runs_are_reported(bench_dir, tmp_path):
    _, _, bench, _ = bench_dir
    lines = []
    result = run_bench(str(bench), ["random", "openai/unreachable"], seeds=1, iterations=1, out=tmp_path / "b",
                       executor="debug", api_base="http://127.0.0.1:9/v1", progress=lines.append)
    # the unreachable LLM ends with llm_error: reported as incomplete, the other run still counts
    assert result["incomplete"] == ["openai_unreachable-s0"]
    assert "INCOMPLETE" in lines[-1] and (tmp_path / "b" / "results.csv").exists()


def test_a_validation_that_cannot_run_is_reported_not_fatal(bench_dir, tmp_path):
    """A run whose private validation spec was edited after init (no longer the sealed one) is not
    validated: the bench says so and goes on (a benchmark without a spec now gets one derived at init)."""
    _, _, bench, _ = bench_dir
    lines = []
    out = tmp_path / "b"
    run_bench(str(bench), ["random"], seeds=1, iterations=1, out=out, executor="debug", progress=lines.append)
    spec = out / "runs" / "random-s0.mlipilot-store" / "validation.yaml"
    spec.write_text(spec.read_text() + "\n# edited after init\n")
    result = run_bench(str(bench), ["random"], seeds=1, iterations=1, out=out, executor="debug",
                       validate=True, progress=lines.append)
    assert result["incomplete"] == []
    assert "reseal-spec" in result["manifest"]["runs"]["random-s0"]["validation_error"]
    assert any(line.startswith("[random-s0] VALIDATION NOT RUN") for line in lines)
    assert "VALIDATION NOT RUN: random-s0" in lines[-1]
    assert result["table"]["validated"].isna().all() and result["summary"]["validated_seeds"].eq(0).all()
    report = write_report(tmp_path / "b")  # nothing validated: no validation figure, no table
    assert not (report.parent / "validation.png").exists() and "Validated trials" not in report.read_text()


def test_report_figures_and_html_render_in_chromium(bench_dir, tmp_path):
    out, _, _, _ = bench_dir
    report = write_report(out)
    names = ("composite_vs_iteration", "verdict_grid", "ranking", "tokens_vs_score", "errors_per_group",
             "md_outcomes", "validation")  # tokens: the scripted LLM spent some; errors and MD outcomes: from the
    # scorecard; validation: the bench validated each run's best
    assert {p.stem for p in report.parent.glob("*.png")} == set(names)
    for name in names:
        assert (report.parent / f"{name}.png").stat().st_size > 5000
        assert (report.parent / f"{name}.svg").read_text().startswith("<?xml")
    page = report.read_text()
    assert page.count("<figure><img") == len(names)  # every embedded figure must decode and render
    assert page.count("<td>expert-s") == 2  # the validated trials' table, a row per run's best
    chromium, flags = assert_figures_render_in_chromium(report, tmp_path / "p")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
    shutil.copy(shot, report.parent / "screenshot.png")


def test_report_on_a_single_run_directory(bench_dir, tmp_path):
    out, _, _, _ = bench_dir
    report = write_report(out / "runs" / "expert-s0", tmp_path / "r")
    page = report.read_text()
    # the run's own rows (its baseline + 3 iterations), not the bench's 24, and its trials table
    assert "<p>4 iterations over 1 runs." in page and "<h2>Trials</h2>" in page
    trials = page.split("<h2>Trials</h2>")[1].split("<h2>")[0]
    recorded = Ledger(out / "runs" / "expert-s0.mlipilot-store" / "ledger.jsonl").latest()
    assert trials.count("<tr>") == len(recorded) >= 2  # a row per trial (the header row is styled)
    assert all(f"<td>{t.verdict}</td>" in trials for t in recorded)
    pngs = sorted((tmp_path / "r").glob("*.png"))
    assert {p.stem for p in pngs} >= {"composite_vs_iteration", "verdict_grid", "ranking"}
    assert page.count("<figure><img") == len(pngs) and all(p.stat().st_size > 5000 for p in pngs)
