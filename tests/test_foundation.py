"""Fine-tuning from a foundation model the user supplies (issue 24): checked and sealed at init, chosen
by name in config.yaml, visible read-only to the training job and nowhere else, audited in the trailers,
tried by the expert. The "foundation" here is the tiny multi-element EMT model shipped with MLIPilot
(benchmarks/foundation/make_tiny_foundation.py); no real checkpoint can be fetched offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git
import pytest
from mlipilot_testkit import commit_trainer, copy_trainer

from mlipilot.foundation import FOUNDATION_INDEX, load
from mlipilot.integrity import load_seal, seal_problem
from mlipilot.resources import project_root

TINY = project_root() / "benchmarks" / "foundation" / "tiny_emt_fcc.model"


def mlipilot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True)


def trailer(repo: git.Repo, rev: str, key: str) -> str:
    return repo.git.log("-1", f"--format=%(trailers:key={key},valueonly)", rev).strip()


@pytest.fixture
def ft_run(tmp_path, fast_benchmark) -> Path:
    run = tmp_path / "run"
    p = mlipilot("init", str(fast_benchmark), str(run), "--executor", "debug", "--foundation", f"tiny={TINY}")
    assert p.returncode == 0, p.stderr
    assert "foundation model tiny:" in p.stdout and "Cu" in p.stdout
    return run


def test_the_shipped_tiny_foundation_is_a_multi_element_mace():
    assert TINY.is_file() and TINY.stat().st_size < 2_000_000, "run benchmarks/foundation/make_tiny_foundation.py"


def test_init_checks_copies_and_seals_it(ft_run):
    store = ft_run.with_name("run.mlipilot-store")
    models = load(store)
    assert set(models) == {"tiny"} and "Cu" in models["tiny"].elements and len(models["tiny"].elements) == 7
    assert (store / "foundation" / "tiny.model").read_bytes() == TINY.read_bytes()
    sealed = load_seal(store)["files"]
    assert "foundation/tiny.model" in sealed and FOUNDATION_INDEX in sealed
    knobs = (ft_run / "knobs.yaml").read_text()
    assert "foundation_model:\n  choices:\n  - none\n  - tiny" in knobs
    assert "## Foundation models" in (ft_run / "program.md").read_text()
    # a changed foundation file breaks the seal: training never starts from something else
    (store / "foundation" / "tiny.model").write_bytes(b"x")
    assert "foundation/tiny.model" in seal_problem(ft_run, store)


@pytest.mark.slow  # whole inits (data generated): 12-21 s, out of the fast lane
def test_init_refuses_what_is_not_a_usable_foundation(tmp_path, fast_benchmark, untrained_model):
    junk = tmp_path / "junk.model"
    junk.write_text("not a model")
    p = mlipilot("init", str(fast_benchmark), str(tmp_path / "a"), "--foundation", f"x={junk}")
    assert p.returncode != 0 and "not a MACE model file" in p.stderr and str(junk) in p.stderr
    assert not (tmp_path / "a").exists()
    silver = tmp_path / "ag.model"  # a MACE model that knows only Ag: the Cu data cannot use it
    from mlipilot_testkit import untrained_mace

    untrained_mace(silver, [47], [0.0])
    p = mlipilot("init", str(fast_benchmark), str(tmp_path / "b"), "--foundation", f"ag={silver}")
    assert p.returncode != 0 and "has no Cu" in p.stderr, p.stderr
    p = mlipilot("init", str(fast_benchmark), str(tmp_path / "c"), "--foundation", "no_equals_sign")
    assert p.returncode != 0 and "NAME=PATH" in p.stderr
    p = mlipilot("init", str(fast_benchmark), str(tmp_path / "d"), "--foundation", f"y={tmp_path / 'missing.model'}")
    assert p.returncode != 0 and "no such file" in p.stderr


@pytest.mark.slow  # a real fine-tuning (2 epochs), scored
def test_fine_tuning_trial_trains_scores_and_is_audited(ft_run):
    cfg = ft_run / "train" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_num_epochs: 6", "max_num_epochs: 2")
                   .replace("E0s: average", "E0s: estimated") + "foundation_model: tiny\n")
    p = mlipilot("trial", "-m", "fine-tune the tiny foundation model", cwd=ft_run)
    print(p.stdout[-3000:], p.stderr[-2000:])
    assert p.returncode == 0, p.stderr
    store = ft_run.with_name("run.mlipilot-store")
    row = [json.loads(x) for x in (store / "ledger.jsonl").read_text().splitlines()][-1]
    assert row["verdict"] in ("accepted", "rejected") and row["metrics"]["energy_rmse"] > 0
    sha = load(store)["tiny"].sha256
    assert row["foundation"] == f"tiny {sha[:16]}"
    assert trailer(git.Repo(ft_run), "HEAD" if row["verdict"] == "accepted" else "refs/mlipilot/rejected/1",
                   "MLIPilot-Foundation") == f"tiny {sha[:16]}"
    log = (Path(row["trial_dir"]) / "train.log").read_text()
    assert "Using foundation model /tmp/mlipilot-job/inputs/tiny.model" in log
    assert "tiny" in mlipilot("show", "1", cwd=ft_run).stdout


@pytest.mark.slow  # a whole trial
def test_the_job_sees_the_foundation_read_only_and_nothing_else(ft_run, good_model):
    store = ft_run.with_name("run.mlipilot-store")
    attack = f"""
import json, os
paths = json.loads(os.environ["MLIPILOT_FOUNDATION_MODELS"])
print("PATHS", paths)
for name, path in paths.items():
    try:
        open(path, "wb").write(b"replaced")
        print("REPLACED", name)
    except OSError as e:
        print("WRITE", e.strerror)
for p in ({str(store)!r}, {str(store / 'foundation')!r}, {str(TINY.parent)!r}):
    print("SEE", p, os.path.exists(p))
""" + copy_trainer(good_model)
    (ft_run / "train" / "train.py").write_text(attack)
    p = mlipilot("trial", "-m", "replace the foundation", cwd=ft_run)
    assert p.returncode == 0, p.stderr
    log = next((store / "trials").glob("0001/train.log")).read_text()
    assert "PATHS {'tiny': '/tmp/mlipilot-job/inputs/tiny.model'}" in log
    assert "WRITE Read-only file system" in log and "REPLACED" not in log
    assert log.count("SEE") == 3 and " True" not in "".join(x for x in log.splitlines() if x.startswith("SEE"))
    assert seal_problem(ft_run, store) is None
    assert (store / "foundation" / "tiny.model").read_bytes() == TINY.read_bytes()


@pytest.mark.slow  # three trials through `mlipilot run`
def test_the_expert_tries_fine_tuning(ft_run, good_model):
    commit_trainer(ft_run, copy_trainer(good_model))
    p = mlipilot("run", "--agent", "expert", "--iterations", "2", cwd=ft_run)
    assert p.returncode == 0, p.stderr
    store = ft_run.with_name("run.mlipilot-store")
    rows = {}
    for line in (store / "ledger.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "trial" in r:
            rows[r["trial"]] = r
    assert rows[3]["hypothesis"].startswith("fine-tuning: start from the foundation model tiny")
    assert rows[3]["foundation"].startswith("tiny ") and rows[3]["knobs"]["foundation_model"] == "tiny"
