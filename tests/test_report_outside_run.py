"""`mlipilot report RUN` writes to the run's private store, never its work tree (the next trial would
refuse the added files); per-trial agents, per-group errors and MD outcomes in the report; and
`mlipilot show N` with the tail of the trial's training log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.integrity import integrity_problem
from mlipilot.report import load_table, write_report
from mlipilot.run_config import RunConfig, load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner

pytestmark = pytest.mark.slow  # the shared run scores trials (job + scoring MD)


def chatty_trainer(src: Path, sleep: float = 0) -> str:
    """copy_trainer that first prints 30 epoch lines and a secret, as a real training log might."""
    return ("for i in range(30):\n    print(f'epoch {i}: loss {1.0 / (i + 1):.3f}')\n"
            "print('api_key=sk-' + 'q' * 24)\n" + copy_trainer(str(src), sleep))


@pytest.fixture(scope="module")
def run(tmp_path_factory, fast_benchmark, good_model, untrained_model) -> RunConfig:
    root = init_run(str(fast_benchmark), tmp_path_factory.mktemp("report_run") / "run", executor="debug",
                    progress=lambda s: None)
    cfg = load_run_config(root)
    t = TrialRunner(cfg, progress=lambda s: None)
    # the run changes hands: a human's baseline, then an agent's trials
    for hyp, src, agent in [("baseline", untrained_model, "human"), ("trained model", good_model, "expert"),
                            ("back to random", untrained_model, "expert")]:
        (root / "train" / "train.py").write_text(chatty_trainer(src))
        t.run(hyp, agent=agent)
    return cfg


def mlipilot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mlipilot", *args], capture_output=True, text=True)


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if ".git" not in p.relative_to(root).parts}


def test_run_report_goes_to_the_store_and_the_next_trial_is_not_refused(run, untrained_model):
    before = files_under(run.root)
    p = mlipilot("report", str(run.root))
    assert p.returncode == 0, p.stderr
    report = run.store / "report" / "report.html"
    assert p.stdout.strip() == f"report: {report}" and report.is_file()
    assert files_under(run.root) == before
    assert subprocess.run(["git", "status", "--porcelain"], cwd=run.root, capture_output=True, text=True,
                          check=True).stdout == ""
    assert integrity_problem(run.root, run.store, run.editable) is None
    # no tokens were spent: no tokens figure; the per-group errors and MD outcomes are drawn
    names = {f.stem for f in (run.store / "report").glob("*.png")}
    assert names == {"composite_vs_iteration", "verdict_grid", "ranking", "errors_per_group", "md_outcomes"}

    (run.root / "train" / "train.py").write_text(chatty_trainer(untrained_model, sleep=0.01))
    p = subprocess.run(["mlipilot", "trial", "-m", "after the report", "--run", str(run.root)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "trial 4:" in p.stdout and "integrity" not in p.stdout + p.stderr


def test_out_inside_the_run_is_refused(run, tmp_path):
    inside = run.root / "train" / "report"
    p = mlipilot("report", str(run.root), "--out", str(inside))
    assert p.returncode == 2 and not inside.exists()
    assert len(p.stderr.strip().splitlines()) == 1
    assert str(inside) in p.stderr and "outside" in p.stderr and str(run.root) in p.stderr
    # anywhere else is fine
    assert mlipilot("report", str(run.root), "--out", str(tmp_path / "r")).returncode == 0
    assert (tmp_path / "r" / "report.html").is_file()


def test_report_shows_each_trials_agent_group_errors_and_md_runs(run, tmp_path):
    df = load_table(run.root)
    trials = df[df["trial"].notna()].set_index("trial")
    assert trials.loc[1, "trial_agent"] == "human" and trials.loc[2, "trial_agent"] == "expert"
    assert set(df["agent"]) == {"human+expert"}  # one series for the run
    groups = [c for c in df.columns if c.startswith("metric_energy_rmse_")]
    assert groups and all(f"metric_force_rmse_{c.removeprefix('metric_energy_rmse_')}" in df for c in groups)
    ok = [c for c in df.columns if c.startswith("md_ok_")]
    assert ok and trials.loc[2, ok].eq(1.0).all()  # the trained model runs every MD to the end
    assert trials.loc[1, ok].eq(0.0).any()  # the random one does not
    page = write_report(run.root, tmp_path / "r").read_text()
    trial_rows = page.split("<h2>Trials</h2>")[1].split("<h2>")[0]
    assert "<td>human</td>" in trial_rows and "<td>expert</td>" in trial_rows and "back to random" in trial_rows


def test_show_prints_the_sanitised_training_log_tail(run):
    p = mlipilot("show", "1", "--run", str(run.root))
    assert p.returncode == 0, p.stderr
    assert "training log, last 20 lines" in p.stdout and "epoch 29: loss" in p.stdout
    assert "epoch 5:" not in p.stdout  # a tail, not the whole log
    assert "[REDACTED]" in p.stdout and "sk-qqqq" not in p.stdout
    e = json.loads(mlipilot("show", "2", "--run", str(run.root), "--json").stdout)
    assert "epoch 29: loss" in e["log_tail"] and len(e["log_tail"].splitlines()) <= 20
