"""Issue 25's smaller items through the `mlipilot` console script (cli.main, in process where a test
lowers a module constant): large data kept out of the run's git, time limits at init, `report`
on the current run, `show`'s per-element/per-group/MD-run tables, the expert's E0s and SWA start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git
import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.io import write
from mlipilot_testkit import copy_trainer

from mlipilot import integrity
from mlipilot.agents.expert import STRATEGIES, ExpertAgent
from mlipilot.cli import main, score_tables
from mlipilot.e0s import ISOLATED_ATOMS, run_e0s
from mlipilot.run_config import load_run_config
from mlipilot.records import TrialRecord
from mlipilot.trial import TrialRunner, provide_large_files


def init(capsys, bench: Path, run: Path, *flags: str) -> str:
    assert main(["init", str(bench), str(run), "--executor", "debug", "--sandbox", "none", *flags]) == 0
    return capsys.readouterr().out


def test_large_data_stays_out_of_git_hashed_and_reaches_the_job(capsys, monkeypatch, tmp_path, fast_benchmark):
    train, valid = fast_benchmark / "train.xyz", fast_benchmark / "valid.xyz"
    assert train.stat().st_size > valid.stat().st_size
    monkeypatch.setattr(integrity, "LARGE_DATA_BYTES", valid.stat().st_size)  # train.xyz is "large", valid.xyz not
    run = tmp_path / "run"
    out = init(capsys, fast_benchmark, run)
    assert f"WARNING: data/train.xyz is {train.stat().st_size / 1e6:.3g} MB: kept out of the run's git" in out
    assert "valid.xyz is" not in out
    tracked = git.Repo(run).git.ls_files().split()
    assert "data/train.xyz" not in tracked and {"data/valid.xyz", integrity.LARGE_DATA_MANIFEST} <= set(tracked)
    assert "/data/train.xyz" in (run / ".gitignore").read_text().splitlines()
    manifest = json.loads((run / integrity.LARGE_DATA_MANIFEST).read_text())
    assert manifest["data/train.xyz"]["sha256"] == integrity.sha256_file(train)

    # the job's tree: git archive's files plus a checked copy of the large file at its path
    src = tmp_path / "src"
    git.Repo(run).git.worktree("add", "--detach", str(src))  # stands in for the job's `git archive` extract
    provide_large_files(run, src)
    assert (src / "data" / "train.xyz").read_bytes() == train.read_bytes()

    # an edit is caught before anything is committed or trained
    with open(run / "data" / "train.xyz", "a") as f:
        f.write("\n")
    assert main(["trial", "-m", "x", "--run", str(run)]) == 2
    assert "data/train.xyz: large data file (kept out of git) changed since init" in capsys.readouterr().err
    assert git.Repo(run).git.rev_list("--count", "HEAD") == "1"


@pytest.mark.slow  # one trial through the debug executor (job + scoring MD)
def test_a_trial_trains_on_the_large_file(capsys, monkeypatch, tmp_path, fast_benchmark, good_model):
    monkeypatch.setattr(integrity, "LARGE_DATA_BYTES", (fast_benchmark / "valid.xyz").stat().st_size)
    run = tmp_path / "run"
    init(capsys, fast_benchmark, run)
    check = "from pathlib import Path\nassert Path(__file__).parent.parent.joinpath('data/train.xyz').stat().st_size > 0\n"
    (run / "train" / "train.py").write_text(check + copy_trainer(str(good_model)))
    row = TrialRunner(load_run_config(run), progress=lambda s: None).run("baseline")
    assert row["verdict"] == "accepted", row.get("log_tail")


def test_init_sets_time_limits_and_refuses_non_positive(capsys, tmp_path, fast_benchmark):
    run = tmp_path / "run"
    init(capsys, fast_benchmark, run, "--train-timeout-min", "90", "--score-timeout-min", "2.5")
    cfg = load_run_config(run)
    assert (cfg.train_timeout_min, cfg.score_timeout_min) == (90.0, 2.5)
    p = subprocess.run(["mlipilot", "init", str(fast_benchmark), str(tmp_path / "bad"), "--score-timeout-min", "0"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip() == "mlipilot: error: --score-timeout-min: expected minutes > 0, got 0"
    assert not (tmp_path / "bad").exists()


def test_report_without_argument_reports_the_current_run(capsys, monkeypatch, tmp_path, fast_benchmark):
    run = tmp_path / "run"
    init(capsys, fast_benchmark, run)
    monkeypatch.chdir(run)
    assert main(["report"]) == 2  # the run is found (no usage error); it has nothing to report yet
    assert capsys.readouterr().err.strip() == f"mlipilot: error: {run.resolve()}: no trials recorded yet — nothing to report"
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--run", str(run)]) == 2 and "no trials recorded yet" in capsys.readouterr().err


SCORED = {"energy_rmse": 12.0, "force_rmse": 80.0, "force_rmse_Cu": 70.0, "force_mae_Cu": 50.0,
          "force_rmse_Au": 95.5, "energy_rmse_bulk": 3.25, "force_rmse_bulk": 60.0, "energy_rmse_slab": 20.0,
          "energy_rmse_max_group": 20.0, "force_rmse_max_group": 60.0, "md_failed_runs": 1.0,
          "md_runs": {"nvt300": {"ok": True, "steps": 200, "reason": None},
                      "nvt900": {"ok": False, "steps": 37, "reason": "temperature runaway at step 37"}},
          "score_seconds": {"total": 3.0}}


def test_show_prints_per_element_group_and_md_run_tables(capsys, tmp_path, fast_benchmark):
    from mlipilot.git_history import RunRepo, format_message
    from mlipilot.ledger import Ledger

    run = tmp_path / "run"
    init(capsys, fast_benchmark, run)
    cfg = load_run_config(run)
    (run / "train" / "config.yaml").write_text("lr: 0.02\n")
    commit = RunRepo(run).commit_paths(cfg.editable, format_message("more lr", "", {
        "Trial": 1, "Hypothesis": "more lr", "Verdict": "accepted", "Reason": "first", "Composite": "1.5"}))
    Ledger(cfg.store / "ledger.jsonl").append({"trial": 1, "status": "finished", "commit": commit,
                                               "verdict": "accepted", "metrics": SCORED})
    assert main(["show", "1", "--run", str(run)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "per element (meV/Å):" in lines and any(line.split() == ["Cu", "70", "50"] for line in lines)
    assert any(line.split() == ["Au", "95.5", "-"] for line in lines)
    assert any(line.split() == ["bulk", "3.25", "60"] for line in lines)
    assert "worst config_type: energy_rmse_max_group 20, force_rmse_max_group 60" in lines
    assert any(line.split()[:3] == ["nvt900", "FAILED", "37"] and "temperature runaway" in line for line in lines)
    assert score_tables({"energy_rmse": 1.0}) == []  # nothing per element, group or run: no tables


class FakeTools:
    """What the expert touches: the run root, train/config.yaml, and the trials so far."""

    def __init__(self, root: Path, trials: int):
        self.root = root
        self.history = type("H", (), {"trials": lambda _: [TrialRecord(trial=i + 1, verdict="rejected")
                                                              for i in range(trials)]})()

    def resolve(self, path: str, write: bool) -> Path:
        return self.root / path

    def write_file(self, path: str, text: str) -> str:
        (self.root / path).write_text(text)
        return "ok"


def expert_step(root: Path, step: int) -> tuple[str, dict]:
    result = ExpertAgent().run_iteration(FakeTools(root, step), "", None)
    return result.text, yaml.safe_load((root / "train" / "config.yaml").read_text())


@pytest.mark.parametrize("epochs, start", [(6, 4), (10, 7), (2, 1)])
def test_expert_swa_starts_before_the_incumbents_last_epoch(tmp_path, epochs, start):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "config.yaml").write_text(f"max_num_epochs: {epochs}\nswa: false\n")
    step = next(i for i, (_, u) in enumerate(STRATEGIES) if "start_swa" in u)
    _, config = expert_step(tmp_path, step)
    assert config["swa"] is True and config["start_swa"] == start < epochs


def synthetic_alloy(root: Path, train_ratios: list[tuple[int, int]], valid_ratios: list[tuple[int, int]]) -> None:
    """Cu/Au frames whose energy is exactly -3 eV per Cu and -1 eV per Au plus 10 meV/atom of noise;
    the isolated atoms given are 0 eV (an EMT-like cohesive energy of 1-3 eV/atom left to learn)."""
    rng = np.random.default_rng(0)
    (root / "data").mkdir(parents=True)

    def frames(ratios):
        out = []
        for cu, au in ratios:
            a = Atoms("Cu" * cu + "Au" * au, positions=rng.uniform(0, 6, (cu + au, 3)), cell=[6] * 3, pbc=True)
            a.info["REF_energy"] = -3.0 * cu - 1.0 * au + rng.normal(0, 0.01) * (cu + au)
            out.append(a)
        return out

    write(root / "data" / "train.xyz", frames(train_ratios), format="extxyz")
    write(root / "data" / "valid.xyz", frames(valid_ratios), format="extxyz")
    (root / "data" / ISOLATED_ATOMS).write_text(json.dumps({"Cu": 0.0, "Au": 0.0}))


def test_expert_e0s_are_the_fit_unless_the_isolated_atoms_leave_less_on_valid(tmp_path):
    varied = [(1, 3), (2, 2), (3, 1), (4, 0), (0, 4)] * 4
    synthetic_alloy(tmp_path / "a", varied, varied[:5])
    e0s, source = run_e0s(tmp_path / "a")
    assert e0s["Cu"] == pytest.approx(-3.0, abs=0.05) and source.startswith("least-squares fit")
    (tmp_path / "a" / "train").mkdir()
    (tmp_path / "a" / "train" / "config.yaml").write_text("E0s: average\n")
    step = next(i for i, (_, u) in enumerate(STRATEGIES) if "E0s" in u)
    hypothesis, config = expert_step(tmp_path / "a", step)
    assert "from the data" not in hypothesis and "least-squares fit" in hypothesis and "with the isolated atoms" in hypothesis
    assert config["E0s"].startswith("{29: ") and ", 79: " in config["E0s"]

    # a training set of one composition cannot separate Cu from Au: the isolated atoms' residual
    # on valid (about the cohesive energy) can be lower than the fit's extrapolation there
    (tmp_path / "b").mkdir()
    synthetic_alloy(tmp_path / "b", [(2, 2)] * 10, [(4, 0), (0, 4)] * 3)
    (tmp_path / "b" / "data" / ISOLATED_ATOMS).write_text(json.dumps({"Cu": -2.9, "Au": -1.1}))
    e0s, source = run_e0s(tmp_path / "b")
    assert e0s == {"Cu": -2.9, "Au": -1.1} and source.startswith("isolated atoms")
