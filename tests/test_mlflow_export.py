"""`mlipilot export mlflow` as a user runs it: the console script, twice, on a small run (the same MLflow
runs, updated, never duplicated); what each MLflow run holds (options, metrics, tags, artifacts) and
what it must never hold (the holdout, the validation spec, the seal, the data seed; secrets in the log);
one-line errors for a bad --tracking-uri or a missing extra; and the result in MLflow's own UI
(`mlflow server` on a loopback port, headless Chromium) and REST API.

The run is real (init, trials, git, ledger, `validate`); only training and validation are stand-ins: a
fake pipeline scores each commit's config and writes what a job leaves in the trial's folder
(train.log, scorecard.json, the model), and a fake validation job fails one check."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_pipeline import FakePipeline, cu_score

from mlipilot.cli import main
from mlipilot.store import SCORE_FILE

SECRET = "sk-" + "q" * 24


def score(config: dict, seed: int):
    w = float(config["energy_weight"])
    if w == 7.0:
        return "RuntimeError: boom"
    return cu_score({1.0: 300.0, 1000.0: 20.0, 500.0: 25.0}[w])


@dataclass
class JobLikePipeline(FakePipeline):
    """FakePipeline that also leaves what a training and scoring job leaves in the trial's folder."""

    def run(self, commit, seed, trial_dir, attach=None, on_submit=None):
        out = super().run(commit, seed, trial_dir, attach, on_submit)
        folder = Path(trial_dir)
        (folder / "train.log").write_text(f"epoch 0: loss 1.0\nepoch 1: loss 0.5\napi_key={SECRET}\n")
        if out.score is not None:
            (folder / SCORE_FILE).write_text(json.dumps(out.score.to_json(), indent=1))
        return out


def fake_validate_job(model_dir, spec_path, scorecard_path, holdout_path, out_json, extra_path=None, expected=None,
                      progress_path=None):
    from mlipilot.integrity import sha256_file

    results = [{"check": c, "kind": c, "quantity": c, "value": v, "reference": 1.0, "error": abs(v - 1) * 100,
                "unit": "%", "bound": "≤ 20", "passed": ok, "seconds": 0.1, "detail": ""}
               for c, v, ok in (("lattice_constant", 1.01, True), ("bulk_modulus", 1.4, False))]
    summary = {"spec": "fake", "spec_sha256": sha256_file(spec_path), "passed": False,
               "failed_checks": ["bulk_modulus"], "seconds": 0.2, "results": results}
    Path(out_json).write_text(json.dumps(summary))
    return {"started": time.time(), "seconds": 0.2, "summary": summary, "log": []}


@pytest.fixture(scope="module")
def run(tmp_path_factory, fast_benchmark):
    """A run of four trials: the infeasible baseline, an accepted fix (validated: fails bulk_modulus), a
    rejected edit and a crash."""
    from mlipilot import jobs
    from mlipilot.run_config import load_run_config
    from mlipilot.rundir import init_run
    from mlipilot.trial import TrialRunner
    from mlipilot.validate import validate_run
    from mlipilot.workspace_tools import WorkspaceTools

    root = init_run(str(fast_benchmark), tmp_path_factory.mktemp("mlflow_run") / "cu1", executor="debug",
                    sandbox="none", progress=lambda s: None)
    cfg = load_run_config(root)
    t = TrialRunner(cfg, progress=lambda s: None, pipeline=JobLikePipeline(cfg.root, score))
    t.run("baseline")
    for w, why in ((1000.0, "weight energies"), (500.0, "less weight"), (7.0, "a crashing edit")):
        WorkspaceTools(cfg).set_options({"energy_weight": w})
        t.run(why, agent="expert")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jobs, "validate_job", fake_validate_job)
        validate_run(cfg, trial=2, executor="debug", progress=lambda s: None)
    return cfg


def client_for(uri: str):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its folder store on request
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def exported_runs(uri: str, name: str) -> dict[str, object]:
    client = client_for(uri)
    exp = client.get_experiment_by_name(name)
    return {r.data.tags["mlipilot.trial"]: r for r in client.search_runs([exp.experiment_id], max_results=100)}


def export(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["mlipilot", "export", "mlflow", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # the console script twice (MLflow's import: seconds each), a sqlite store
def test_export_twice_gives_the_same_runs_with_what_each_trial_holds(run, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlipilot.ledger import Ledger

    t0 = time.time()
    first = export(str(run.root), cwd=tmp_path)  # the default: ./mlruns, relative to the current directory
    assert first.returncode == 0, first.stderr
    uri = (tmp_path / "mlruns").as_uri()
    assert f"exported 4 trials of 1 run to MLflow experiment '{run.name}' at {uri} (4 new, 0 updated)" in first.stdout
    assert "mlflow ui --backend-store-uri" in first.stdout
    before = exported_runs(uri, run.name)
    assert set(before) == {"1", "2", "3", "4"}
    second = export("--run", str(run.root), "--tracking-uri", uri, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "(0 new, 4 updated)" in second.stdout
    after = exported_runs(uri, run.name)
    assert {k: r.info.run_id for k, r in after.items()} == {k: r.info.run_id for k, r in before.items()}
    print(f"two exports: {time.time() - t0:.1f} s")

    client = client_for(uri)
    recorded = {r.trial: r for r in Ledger(run.store / "ledger.jsonl").latest()}
    two = after["2"]
    assert two.info.run_name == "trial 2" and after["1"].info.run_name == "trial 1 (baseline)"
    assert two.data.params["energy_weight"] == "1000.0" and two.data.params["seed"] == "1"
    assert two.data.params["mlipilot.agent"] == "expert" and two.data.params["max_num_epochs"] == "6"
    assert two.data.metrics["energy_rmse"] == 20.0 and two.data.metrics["composite"] == recorded[2].composite
    assert two.data.metrics["feasible"] == 1.0 and "train_seconds" in two.data.metrics
    assert two.data.metrics["md.nvt1000_32.ok"] == 1.0 and "tokens_in" in two.data.metrics
    assert len(client.get_metric_history(two.info.run_id, "energy_rmse")) == 1  # re-exported, not re-logged
    tags = two.data.tags
    assert tags["mlipilot.verdict"] == "accepted" and tags["mlipilot.commit"] == recorded[2].commit
    assert tags["mlipilot.hypothesis"] == "weight energies" and tags["mlipilot.validated"] == "fail"
    assert tags["mlipilot.validation_failed"] == "bulk_modulus" and tags["mlipilot.run"] == run.name
    assert after["3"].data.tags["mlipilot.verdict"] == "rejected" and after["4"].info.status == "FAILED"
    assert after["1"].data.tags["mlipilot.baseline"] == "true"

    def files(r) -> set[str]:
        out, todo = set(), [None]
        while todo:
            for f in client.list_artifacts(r.info.run_id, todo.pop()):
                (todo.append(f.path) if f.is_dir else out.add(f.path))
        return out

    assert files(two) == {"model/weights.pt", "train.log", "scorecard.json", "validation.json"}
    assert files(after["3"]) == {"model/weights.pt", "train.log", "scorecard.json"}  # never validated
    log = Path(client.download_artifacts(two.info.run_id, "train.log", str(tmp_path / "dl"))).read_text()
    assert "epoch 1: loss 0.5" in log and SECRET not in log and "[REDACTED]" in log

    # nothing of what the agent must not see left the store
    store_only = [run.store / n for n in ("holdout.xyz", "seal.json", "protected.json", "validation.yaml",
                                          "data_seed.json")]
    names = {p.name for p in (tmp_path / "mlruns").rglob("*")}
    assert not names & {p.name for p in store_only}
    holdout_line = next(line for line in (run.store / "holdout.xyz").read_text().splitlines()[2:] if line.strip())
    secrets = [holdout_line] + [p.read_text()[:200] for p in store_only[1:] if p.is_file()]
    for f in (tmp_path / "mlruns").rglob("*"):
        if f.is_file():
            text = f.read_bytes().decode(errors="replace")
            assert not any(s in text for s in secrets), f
            assert SECRET not in text, f

    # any tracking URI: a sqlite database, the same trials, its artifacts beside it (not in ./mlruns)
    from mlipilot.mlflow_export import export_mlflow

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    db = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    (tmp_path / "db").mkdir()
    assert export_mlflow(run.root, db, progress=lambda s: None).created == 4
    assert export_mlflow(run.root, db, progress=lambda s: None).updated == 4
    runs = exported_runs(db, run.name)
    assert set(runs) == {"1", "2", "3", "4"} and not (tmp_path / "elsewhere" / "mlruns").exists()
    assert runs["2"].info.artifact_uri.startswith((tmp_path / "db" / "mlartifacts").as_uri())


@pytest.mark.slow  # MLflow's import (seconds)
def test_bad_tracking_uri_and_missing_extra_are_one_line_with_the_fix(run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    for uri, says in (("nosuch://host/x", "MLflow cannot use it"),
                      (str(run.root / "mlruns"), "inside the run directory"),
                      (str(run.root / "mlipilot.toml"), "inside the run directory")):
        assert main(["export", "mlflow", str(run.root), "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err and "--tracking-uri" in err, err
    (tmp_path / "afile").write_text("x")
    assert main(["export", "mlflow", str(run.root), "--tracking-uri", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (run.root / "mlruns").exists()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    assert main(["export", "mlflow", str(run.root), "--tracking-uri", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install 'mlipilot[mlflow]'" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.slow  # mlflow server takes ~20 s to start on 2 cores, then Chromium renders its UI
def test_the_export_in_mlflows_ui_and_api(run, tmp_path):
    pytest.importorskip("mlflow")
    from mlipilot_testkit import assert_figures_render_in_chromium  # noqa: F401  (skips without Chromium)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    assert export(str(run.root), "--tracking-uri", str(tmp_path / "mlruns"), cwd=tmp_path).returncode == 0
    uri = (tmp_path / "mlruns").as_uri()
    runs = exported_runs(uri, run.name)
    experiment = runs["2"].info.experiment_id
    port = free_port()
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port), "--workers", "1"], env=env, cwd=tmp_path,
                              stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.time() - t0 < 120, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        print(f"mlflow server up in {time.time() - t0:.1f} s")
        # the REST API through the same server: the experiment, its four runs, a metric as recorded
        exp = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={run.name}")["experiment"]
        assert exp["experiment_id"] == experiment
        got = get_json(f"{base}/api/2.0/mlflow/runs/get?run_id={runs['2'].info.run_id}")["run"]
        metrics = {m["key"]: m["value"] for m in got["data"]["metrics"]}
        assert metrics["energy_rmse"] == 20.0 and metrics["composite"] == pytest.approx(runs["2"].data.metrics["composite"])
        # the UI (a JS app): the experiment's runs page lists the trials, a run's page its metrics
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]
        page = f"{base}/#/experiments/{experiment}/runs"
        dom = subprocess.run([chromium, *flags, "--virtual-time-budget=20000", "--dump-dom", page],
                             capture_output=True, text=True, timeout=180).stdout
        assert all(f"trial {n}" in dom for n in (1, 2, 3, 4)), dom[-2000:]
        shot = tmp_path / "mlflow_runs.png"
        subprocess.run([chromium, *flags, "--virtual-time-budget=20000", f"--screenshot={shot}", page],
                       capture_output=True, timeout=180)
        assert shot.stat().st_size > 20_000
        one = f"{base}/#/experiments/{experiment}/runs/{runs['2'].info.run_id}"
        dom = subprocess.run([chromium, *flags, "--virtual-time-budget=20000", "--dump-dom", one],
                             capture_output=True, text=True, timeout=180).stdout
        assert "energy_rmse" in dom and "trial 2" in dom
        subprocess.run([chromium, *flags, "--virtual-time-budget=20000", f"--screenshot={tmp_path / 'mlflow_run.png'}",
                        one], capture_output=True, timeout=180)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started, nothing else
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
