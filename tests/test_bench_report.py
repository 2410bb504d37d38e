"""`mlipilot bench` (expert, random, a scripted LLM × 2 seeds) end to end, the results table, and
`mlipilot report` rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from fake_llm_server import FakeLLMServer
from mlipilot.bench import run_bench
from mlipilot.report import write_report

# A stand-in trainer: energy_weight >= 100 (the known fix) yields the trained model, anything else the
# untrained one. Real training is covered elsewhere; here the bench machinery is under test.
SURROGATE = """\
import argparse, shutil, yaml
p = argparse.ArgumentParser(); p.add_argument('--out-dir'); p.add_argument('--model-out'); a = p.parse_args()
cfg = yaml.safe_load(open('train/config.yaml'))
shutil.copy({good!r} if float(cfg.get('energy_weight', 1)) >= 100 else {bad!r}, a.model_out)
"""


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory, fast_benchmark, good_model, untrained_model):
    bench = tmp_path_factory.mktemp("bench_def") / "cu_surrogate"
    shutil.copytree(fast_benchmark, bench)
    (bench / "workspace" / "train" / "train.py").write_text(SURROGATE.format(good=str(good_model),
                                                                            bad=str(untrained_model)))
    out = tmp_path_factory.mktemp("bench_out")
    script = [{"tool": "edit_file", "args": {"path": "train/config.yaml", "old_text": "energy_weight: 1.0",
                                             "new_text": "energy_weight: 100.0"}},
              {"tool": "run_experiment", "args": {"hypothesis": "weight energies more"}}]
    with FakeLLMServer(script, cycle=True) as server:
        result = run_bench(str(bench), ["expert", "random", "openai/scripted"], seeds=2, iterations=3, out=out,
                           executor="debug", api_base=server.api_base)
    return out, result, bench, server


def test_bench_table_schema_and_identical_start(bench_dir):
    out, result, _, _ = bench_dir
    assert result["incomplete"] == []
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 3 * 2 * 3 and set(df["agent"]) == {"expert", "random", "openai/scripted"}
    for col in ("agent", "seed", "iteration", "verdict", "composite", "best_so_far", "feasible_so_far",
                "tokens_in", "tokens_out", "cost", "tool_errors", "llm_calls", "job_failed", "job_timeout",
                "wall_llm", "wall_queue", "wall_train", "wall_score", "harness_hash", "scorecard_hash",
                "metric_energy_rmse", "metric_force_rmse"):
        assert col in df.columns, col
    assert pd.read_csv(out / "results.csv").shape == df.shape
    assert df["harness_hash"].nunique() == 1 and df["scorecard_hash"].nunique() == 1
    expert = df[df.agent == "expert"]
    assert expert.groupby("seed")["feasible_so_far"].last().all()  # the fix is found in both seeds
    assert (df[df.agent == "openai/scripted"]["tokens_in"] > 0).all()
    assert (df[df.agent != "openai/scripted"]["tokens_in"] == 0).all()
    manifest = json.loads((out / "bench.json").read_text())
    assert manifest["start"]["baseline"] and len(manifest["runs"]) == 6


def test_bench_resumes_and_skips_finished_runs(bench_dir):
    out, _, bench, server = bench_dir
    lines = []
    result = run_bench(str(bench), ["expert"], seeds=2, iterations=3, out=out, executor="debug",
                       progress=lines.append)
    assert sum("already finished" in line for line in lines) == 2
    assert len(result["table"]) == 18


def test_incomplete_runs_are_reported(bench_dir, tmp_path):
    _, _, bench, _ = bench_dir
    lines = []
    result = run_bench(str(bench), ["random", "openai/unreachable"], seeds=1, iterations=1, out=tmp_path / "b",
                       executor="debug", api_base="http://127.0.0.1:9/v1", progress=lines.append)
    # the unreachable LLM ends with llm_error: reported as incomplete, the other run still counts
    assert result["incomplete"] == ["openai_unreachable-s0"]
    assert "INCOMPLETE" in lines[-1] and (tmp_path / "b" / "results.csv").exists()


def test_report_figures_and_html_render_in_chromium(bench_dir, tmp_path):
    out, _, _, _ = bench_dir
    report = write_report(out)
    names = ("composite_vs_iteration", "verdict_grid", "ranking", "tokens_vs_score", "errors_per_group",
             "md_outcomes")  # tokens: the scripted LLM spent some; errors and MD outcomes: from the scorecard
    assert {p.stem for p in report.parent.glob("*.png")} == set(names)
    for name in names:
        assert (report.parent / f"{name}.png").stat().st_size > 5000
        assert (report.parent / f"{name}.svg").read_text().startswith("<?xml")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run([chromium, *flags, "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n = report.read_text().count("<figure><img")  # every embedded figure must decode and render
    assert n == len(names)
    assert f'data-figures-rendered="{n}"' in dom and f'data-figures-total="{n}"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
    shutil.copy(shot, report.parent / "screenshot.png")


def test_report_on_a_single_run_directory(bench_dir, tmp_path):
    out, _, _, _ = bench_dir
    report = write_report(out / "runs" / "expert-s0", tmp_path / "r")
    assert report.is_file() and (tmp_path / "r" / "verdict_grid.png").is_file()
