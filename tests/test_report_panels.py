"""`mlipilot report` of a bench with two agents, as a reader sees it in headless Chromium at 1280 px:
no horizontal scroll, tables that fit, one trial numbering, the noise margin and why a trial inside it
was rejected, and the panels that only appear with their data — validation (checks failed named),
data (frames, labels, budget left), what each trial changed (options, data commits) and fine-tuning.

The bench is real (`run_bench`: init, agent loop, git, ledger, data actions with the EMT reference,
`validate`), only training and validation are stand-ins: a fake pipeline scores each commit's config
(tests/fake_pipeline.py) and a fake validation job fails two checks on the data agent's models."""

from __future__ import annotations

import fcntl
import html
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from fake_pipeline import FakePipeline, cu_score
from mlipilot_testkit import assert_figures_render_in_chromium

from mlipilot.agents.base import Agent, IterationResult
from mlipilot.agents.config_edits import set_config
from mlipilot.records import interrupted

BUDGET = 40  # the bench's label budget (calls per run)


def score(config: dict, seed: int):
    """energy_rmse from the options; composite = E/30 + 0.5, feasible while E <= 30, margin 2 %."""
    e = 300.0 if float(config.get("energy_weight", 1)) < 100 else 20.0
    if str(config.get("foundation_model", "none")) != "none":
        e -= 5.0  # fine-tuning helps
    if config.get("swa"):
        e -= 0.2  # a gain inside the 2 % margin: rejected
    if float(config.get("forces_weight", 0)) == 20.0:
        e -= 1.0
    if float(config.get("lr", 0.01)) == 0.02:
        e += 3.0
    if int(config.get("max_num_epochs", 0)) == 12:
        e -= 0.3  # inside the margin again
    return cu_score(e)


class DataAgent(Agent):
    """Grows the training set (three EMT-labelled rattled frames a round) and changes one option."""
    name = "data-agent"
    PLAN = [(True, {"energy_weight": 100.0}, "weight energies, with three rattled frames"),
            (True, {"forces_weight": 20.0}, "more force weight, three more frames"),
            (True, {"lr": 0.02}, "a faster learning rate, three more frames"),
            (False, {"max_num_epochs": 12}, "train longer")]

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def run_iteration(self, tools, brief, limits):
        from mlipilot.data_actions import DataActions

        done = len([t for t in tools.history.trials() if not interrupted(t)])  # the harness's baseline included
        if done > len(self.PLAN):
            return IterationResult("finish", "plan done")
        data, updates, hypothesis = self.PLAN[done - 1]
        if data:
            acts = DataActions(tools.cfg, progress=lambda s: None)
            pool = acts.sample("rattle*", driver="reference", method="rattle", n_frames=6, seed=self.seed * 10 + done)
            acts.add(acts.label(acts.select(pool, "random", n=3, seed=done)))
        set_config(tools, updates)
        return IterationResult("experiment", hypothesis)


def fake_validate_job(model_dir, spec_path, scorecard_path, holdout_path, out_json, extra_path=None, expected=None,
                      progress_path=None):
    """mlipilot.jobs.validate_job's result, without the physics: the data agent's models fail two checks."""
    import json

    from mlipilot.integrity import sha256_file

    failed = ["bulk_modulus", "vacancy"] if "DataAgent" in str(out_json) else []
    results = [{"check": c, "kind": c, "quantity": c, "value": 1.0, "reference": 1.0, "error": 0.0 if c not in failed
                else 40.0, "unit": "%", "bound": "≤ 20", "passed": c not in failed, "seconds": 0.1, "detail": ""}
               for c in ("lattice_constant", "bulk_modulus", "vacancy")]
    summary = {"spec": "fake", "spec_sha256": sha256_file(spec_path), "passed": not failed, "failed_checks": failed,
               "seconds": 0.3, "results": results}
    with open(out_json, "w") as f:
        json.dump(summary, f)
    return {"started": time.time(), "seconds": 0.3, "summary": summary, "log": []}


def made_once(tmp_path_factory, name: str, make) -> Path:
    """`make(folder)` once per test session, not once per xdist worker (as conftest's _made_once): the
    first worker here builds it, the other waits and reads it. Tests only read what it returns."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    done = root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            done.write_text(str(make(root / name)))
    return Path(done.read_text())


@pytest.fixture(scope="module")
def bench(tmp_path_factory, fast_benchmark, untrained_model):
    return made_once(tmp_path_factory, "panels_bench", lambda folder: make_bench(folder, fast_benchmark, untrained_model))


def make_bench(folder: Path, fast_benchmark: Path, untrained_model: Path) -> Path:
    from mlipilot import agent_loop, comparison, jobs
    from mlipilot.comparison import run_bench
    from mlipilot.trial import TrialRunner

    definition = folder / "cu_panels"
    shutil.copytree(fast_benchmark, definition)
    meta = yaml.safe_load((definition / "benchmark.yaml").read_text())
    meta.update(foundation_models={"mp0": str(untrained_model)}, data_actions={"label_budget": {"calls": BUDGET}})
    (definition / "benchmark.yaml").write_text(yaml.safe_dump(meta))
    out = folder / "bench"
    t0 = time.time()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(agent_loop, "TrialRunner", lambda cfg, progress=print: TrialRunner(
            cfg, progress=progress, pipeline=FakePipeline(cfg.root, score)))
        mp.setattr(jobs, "validate_job", fake_validate_job)
        harness = comparison.harness_hash()  # once: a source file saved during the fixture is not a different start
        mp.setattr(comparison, "harness_hash", lambda: harness)
        result = run_bench(str(definition), ["expert", f"{__name__}:DataAgent"], seeds=2, iterations=4, out=out,
                           executor="debug", validate=True, progress=lambda s: None)
    assert result["incomplete"] == [], result["manifest"]
    print(f"bench fixture: {time.time() - t0:.1f} s")
    return out


def layout_in_chromium(report, profile, width: int = 1280) -> tuple[dict, str]:
    """The report's own measurements (data-* on <body>, set on load) at a window `width` px wide."""
    chromium, flags = assert_figures_render_in_chromium(report, profile)
    dom = subprocess.run([chromium, *flags, f"--window-size={width},1600", "--virtual-time-budget=5000", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    return {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(\d+)"', body)}, chromium


def section(page: str, title: str) -> str:
    return page.split(f"<h2>{title}</h2>")[1].split("<h2>")[0]


@pytest.mark.slow  # a bench of four runs (fake training, real data actions), then Chromium
def test_bench_report_panels_fit_the_page_in_chromium(bench, tmp_path):
    from mlipilot.report import write_report

    t0 = time.time()
    report = write_report(bench)
    page = report.read_text()
    print(f"report: {time.time() - t0:.1f} s")
    for title in ("Summary", "Progress", "What each trial changed", "Fine-tuning", "Data", "Validation"):
        assert f"<h2>{title}</h2>" in page, title
    pngs = {p.stem for p in report.parent.glob("*.png")}
    assert {"composite_vs_iteration", "verdict_grid", "ranking", "validation", "data_growth", "data_per_trial"} <= pngs
    assert page.count("<figure><img") == len(pngs)

    # the summary: fewer columns, in words
    summary = section(page, "Summary")
    assert "best composite (mean ± SEM)" in summary and "<th>validated</th>" in summary
    assert "best_composite_sem" not in page and "frac_validated" not in page
    assert "<td>2 of 2 passed</td>" in summary and "<td>0 of 2 passed</td>" in summary
    # one numbering: trials, the baseline marked; the within-margin rejection says why
    changed = section(page, "What each trial changed")
    assert changed.count("<td>1 (baseline)</td>") == 4  # one table per run
    assert "better than the best, but within the noise margin" in changed
    assert "energy_weight 1 → 100" in changed and "+foundation_model mp0" in changed
    data_commits = re.findall(r"data: add \+3 −0 frames data/added/\d\.xyz \(commit ([0-9a-f]{8})\)", changed)
    assert len(data_commits) == 2 * 3  # each data-agent run: three trials carried a data commit
    # fine-tuning: the expert's trials from its third on, in both runs
    tuned = section(page, "Fine-tuning")
    assert "6 trials started from a foundation model (mp0 " in html.unescape(tuned)
    # data: frames, labels spent and budget left per trial
    data = section(page, "Data")
    assert f"<td>{BUDGET - 3} of {BUDGET}</td>" in data and "<td>+3</td>" in data
    assert all(c in data for c in data_commits[:2])
    # validation: per agent, the checks that failed named with their counts
    validation = section(page, "Validation")
    assert "bulk_modulus (2), vacancy (2)" in validation and "<h3>Validated trials</h3>" in validation

    layout, chromium = layout_in_chromium(report, tmp_path / "profile")
    assert layout["figures-rendered"] == layout["figures-total"] == len(pngs)
    assert layout["scroll-width"] <= layout["client-width"] <= 1280, layout  # no horizontal scroll
    assert layout["wide-tables"] == 0, layout  # and no table wider than its column
    shot = tmp_path / "bench_report_1280.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1280,7000", "--hide-scrollbars",
                    "--virtual-time-budget=5000", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000


@pytest.mark.slow  # the bench above
def test_the_composite_figure_marks_the_margin_and_uses_trials(bench, tmp_path, monkeypatch):
    """Linear y where the range is narrow, integer trial ticks with the baseline named, the margin each
    trial had to beat drawn, and within-margin rejections ringed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mlipilot.report import load_table, make_figures
    from mlipilot.report_panels import trial_details, with_details, within_margin

    seen = {}
    real_save = Figure.savefig

    def spy(self, fname, *a, **kw):
        done = real_save(self, fname, *a, **kw)  # drawn: the tick labels are set
        name = str(fname).rsplit("/", 1)[-1]
        if name.endswith(".png"):
            ax = self.axes[0]
            seen[name[:-4]] = (ax.get_yscale(), [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
                               len(ax.patches), ax.get_legend() and [t.get_text() for t in ax.get_legend().get_texts()])
        return done

    monkeypatch.setattr(Figure, "savefig", spy)
    df = load_table(bench)
    df = with_details(df, trial_details(bench, df))
    assert within_margin(df).sum() == 4  # the expert's SWA and the data agent's longer training, both seeds
    make_figures(df.assign(_within_margin=within_margin(df)), tmp_path)
    yscale, ticks, bars, legend = seen["composite_vs_iteration"]
    assert yscale == "log"  # 10 (infeasible baseline) to 0.99: more than a factor 10
    assert ticks[:2] == ["1\nbaseline", "2"] and all("." not in t for t in ticks)
    assert bars > 0 and "noise margin to beat" in legend and "rejected: within the margin" in legend
    assert "fine-tuned" in legend
    # only feasible trials: 1.0 to 1.17 — a linear axis
    seen.clear()
    feasible = df[df["feasible"].astype(bool)]
    make_figures(feasible.assign(_within_margin=within_margin(feasible)), tmp_path / "f")
    assert seen["composite_vs_iteration"][0] == "linear"


def test_three_close_trials_get_a_linear_axis_integer_ticks_and_a_reason(tmp_path, monkeypatch):
    """The issue's three-trial Cu run: composites 1.6948–1.6953 on a linear axis with plain labels (no
    1.6953 × 10⁰, no offset), ticks at trials 1, 2, 3 only (the baseline named), the within-margin trial
    ringed, and a summary in words, its mean to the SEM's precision."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mlipilot.report import make_figures
    from mlipilot.report_panels import summary_table, within_margin

    rows = [{"agent": "expert", "seed": s, "run": f"r{s}", "iteration": i - 1, "trial": i, "trial_agent": "expert",
             "verdict": v, "composite": c + 0.0001 * s, "feasible": True, "total_violation": 0.0,
             "best_so_far": b + 0.0001 * s, "best_so_far_feasible": True, "feasible_so_far": True, "margin": m,
             "tokens_in": 0, "tokens_out": 0, "cost": 0.0, "tool_errors": 0, "llm_calls": 0, "job_failed": False,
             "wall_llm": 0.0, "wall_total": 60.0, "noise_sigma": None, "harness_seed": 1}
            for s in (0, 1)
            for i, (v, c, b, m) in enumerate([("accepted", 1.6953, 1.6953, None), ("rejected", 1.6950, 1.6953, 0.034),
                                              ("accepted", 1.6948 - 0.04, 1.6948 - 0.04, 0.034)], start=1)]
    df = pd.DataFrame(rows)
    assert within_margin(df).tolist() == [False, True, False] * 2
    seen = {}
    real = Figure.savefig

    def spy(self, fname, *a, **kw):
        done = real(self, fname, *a, **kw)
        if str(fname).endswith("composite_vs_iteration.png"):
            ax = self.axes[0]
            seen.update(y=ax.get_yscale(), labels=[t.get_text() for t in ax.get_yticklabels()],
                        offset=ax.yaxis.get_offset_text().get_text(),
                        x=[t.get_text() for t in ax.get_xticklabels() if t.get_text()],
                        rings=[c for c in ax.collections if getattr(c, "get_sizes", lambda: [])().tolist() == [90.0]])
        return done

    monkeypatch.setattr(Figure, "savefig", spy)
    make_figures(df, tmp_path)
    assert seen["y"] == "linear" and seen["offset"] == ""
    assert not any("×" in t or "e" in t.lower() for t in seen["labels"]), seen["labels"]
    assert seen["x"] == ["1\nbaseline", "2", "3"]
    assert len(seen["rings"]) == 2  # the within-margin trial of each run
    summary = summary_table(df)
    assert list(summary.columns[:5]) == ["agent", "runs", "best composite (mean ± SEM)", "feasible", "validated"]
    assert summary.loc[0, "best composite (mean ± SEM)"] == "1.654850 ± 0.000050"  # two significant digits of the SEM
    assert summary.loc[0, "validated"] == "not validated" and summary.loc[0, "time per run"] == "3.0 min"


@pytest.mark.slow  # the bench above (here because it is built here), MLflow's import
def test_a_bench_exports_to_one_experiment_with_fine_tuning_and_data_tags(bench, tmp_path, monkeypatch):
    """`mlipilot export mlflow BENCH`: one experiment named after the bench, a run per trial of every run,
    fine-tuned trials tagged with their foundation model, data-carrying ones with their data commits."""
    pytest.importorskip("mlflow")
    from mlipilot.mlflow_export import export_mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    lines: list[str] = []
    assert export_mlflow(bench, uri, progress=lines.append).created == 20
    assert f"exported 20 trials of 4 runs to MLflow experiment 'bench' at {uri} (20 new, 0 updated)" in lines
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("bench").experiment_id], max_results=100)
    by = {(r.data.tags["mlipilot.run"], int(r.data.tags["mlipilot.trial"])): r for r in runs}
    assert len(by) == 20 and by[("expert-s0", 1)].info.run_name == "expert-s0 trial 1 (baseline)"
    assert by[("expert-s0", 3)].data.tags["mlipilot.foundation"].startswith("mp0 ")
    assert by[("expert-s0", 3)].data.tags["mlipilot.validated"] == "pass"
    assert by[("expert-s0", 3)].data.params["foundation_model"] == "mp0"
    data = by[("test_report_panels_DataAgent-s0", 2)]
    assert len(data.data.tags["mlipilot.data_commit"]) == 40 and data.data.metrics["labels_spent"] == 3.0
    assert data.data.tags["mlipilot.bench"] == "bench" and data.data.params["mlipilot.agent"] == "data-agent"
    assert export_mlflow(bench, uri, progress=lines.append).updated == 20
