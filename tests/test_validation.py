"""`mlipilot validate`: the spec loads strictly, a good model passes and an untrained one fails
named checks (real MACE models, the shipped trained one and a random-weight one), a killed
validation resumes at its next check, and the CLI records the result in the store, the ledger and
a git note that `mlipilot log` shows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlipilot_testkit import (ROOT, SHIPPED_MODEL, assert_figures_render_in_chromium, copy_trainer, exported,
                              untrained_mace, with_validation)
from mlipilot_testkit import TINY_VALIDATION as TINY

from mlipilot.errors import MLIPilotError
from mlipilot.validation.runner import validate_model
from mlipilot.validation.spec import load_validation_spec

def write_spec(path: Path, spec: dict = TINY) -> Path:
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("validation_models")
    shutil.copy(SHIPPED_MODEL, d / "good.model")
    return {"good": exported(d / "good.model"),
            "untrained": exported(untrained_mace(d / "untrained.model", [29], [0.0]))}


@pytest.fixture(scope="module")
def holdout(default_data) -> Path:
    return default_data["holdout"]


@pytest.mark.parametrize("edit, field, hint", [
    (lambda d: d["checks"][1].update(kind="lattice_constnt"), "checks[1].kind", "did you mean 'lattice_constant'?"),
    (lambda d: d["checks"][0]["params"].update(stpes=10), "checks[0].params.stpes", "did you mean 'steps'?"),
    (lambda d: d["checks"][2].pop("max"), "checks[2].max", "a check needs a bound"),
    (lambda d: d["checks"][2].update(maxx=3), "checks[2].maxx", "did you mean 'max'?"),
    (lambda d: d.update(refrence={"name": "emt"}), "refrence", "did you mean 'reference'?"),
    (lambda d: d["checks"][3].update(bounds={"nu_X_max": {"mx": 3}}), "checks[3].bounds.nu_X_max.mx", "'max'"),
])
def test_a_typo_in_the_validation_spec_fails_at_load(tmp_path, edit, field, hint):
    spec = json.loads(json.dumps(TINY))
    edit(spec)
    with pytest.raises(MLIPilotError) as e:
        load_validation_spec(write_spec(tmp_path / "v.yaml", spec))
    msg = str(e.value)
    assert "v.yaml" in msg and f"'{field}'" in msg and hint in msg and "\n" not in msg, msg


def test_shipped_validation_specs_load():
    for name in ("cu_emt", "qm7_b3lyp"):
        spec = load_validation_spec(ROOT / "scorecards" / f"{name}.validation.yaml")
        assert len(spec.checks) >= 3


def test_the_runner_on_one_cheap_check(tmp_path, models, holdout):
    """The fast lane's share of the next test: no MD, one bulk check, the same two models."""
    spec = write_spec(tmp_path / "v.yaml", dict(TINY, checks=[TINY["checks"][1]]))  # lattice_constant
    card = ROOT / "scorecards" / "cu_emt.yaml"
    good = validate_model(models["good"], spec, card, holdout, tmp_path / "good.json", progress=print)
    assert good["passed"] and (tmp_path / "good.json").is_file()
    bad = validate_model(models["untrained"], spec, card, holdout, tmp_path / "bad.json", progress=print)
    assert not bad["passed"] and bad["failed_checks"] == ["lattice_constant"]


@pytest.mark.slow  # the tiny validation (MD, bulk, phonons) on two MACE models
def test_a_good_model_passes_and_an_untrained_one_fails_named_checks(tmp_path, models, holdout):
    spec = write_spec(tmp_path / "v.yaml")
    card = ROOT / "scorecards" / "cu_emt.yaml"
    good = validate_model(models["good"], spec, card, holdout, tmp_path / "good.json", progress=print)
    assert good["passed"], [r for r in good["results"] if not r["passed"]]
    bad = validate_model(models["untrained"], spec, card, holdout, tmp_path / "bad.json", progress=print)
    assert not bad["passed"]
    assert {"md_short", "lattice_constant"} <= set(bad["failed_checks"]), bad["failed_checks"]
    md = next(r for r in bad["results"] if r["check"] == "md_short")
    assert md["value"] is not None and md["value"] < 1.0 and md["detail"]
    assert all(r["seconds"] >= 0 for r in good["results"])


@pytest.mark.slow  # MD on the trained model, killed and resumed
def test_a_killed_validation_resumes_at_its_next_check(tmp_path, models, holdout):
    spec = dict(TINY, checks=[TINY["checks"][1],  # fast, then an MD run (~10 s) to be killed in
                              {"name": "md_long", "kind": "long_md", "min": 1.0,
                               "params": {"supercell": 2, "temperatures_K": [600.0], "steps": 600}}])
    path = write_spec(tmp_path / "v.yaml", spec)
    card = ROOT / "scorecards" / "cu_emt.yaml"
    out = tmp_path / "out" / "validation.json"
    out.parent.mkdir()
    code = ("from pathlib import Path; from mlipilot.validation.runner import validate_model; "
            f"validate_model(Path({str(models['good'])!r}), Path({str(path)!r}), Path({str(card)!r}), "
            f"Path({str(holdout)!r}), Path({str(out)!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    partial = out.with_name("validation.partial.json")
    deadline = time.time() + 300
    while not (partial.is_file() and "lattice_constant" in json.loads(partial.read_text())["checks"]):
        assert proc.poll() is None and time.time() < deadline, "the first check never finished"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # as a node failure or scancel would
    proc.wait()
    assert not out.exists()
    lines: list[str] = []
    summary = validate_model(models["good"], path, card, holdout, out, progress=lines.append)
    assert any(line.startswith("  lattice_constant: done earlier (resumed)") for line in lines), lines
    assert [r["check"] for r in summary["results"]] == ["lattice_constant", "md_long"]
    assert summary["passed"] and not partial.exists() and out.is_file()


@pytest.mark.slow
def test_validate_cli_records_store_ledger_note_and_log(tmp_path, fast_benchmark, models, good_model, untrained_model):
    bench = tmp_path / "bench"
    shutil.copytree(fast_benchmark, bench)
    with_validation(bench)
    run = tmp_path / "run"

    def mlipilot(*args: str, rc: int = 0) -> str:
        p = subprocess.run(["mlipilot", *args], cwd=run if run.exists() else tmp_path, capture_output=True,
                           text=True, timeout=900)
        assert p.returncode == rc, p.stdout[-3000:] + p.stderr[-3000:]
        return p.stdout + p.stderr

    mlipilot("init", str(bench), str(run), "--executor", "local")
    store = run.with_name("run.mlipilot-store")
    assert (store / "validation.yaml").is_file() and not (run / "validation.yaml").exists()
    (run / "train" / "train.py").write_text(copy_trainer(good_model))
    mlipilot("trial", "-m", "baseline: the trained model")
    (run / "train" / "train.py").write_text(copy_trainer(untrained_model))
    mlipilot("trial", "-m", "random weights")  # rejected: the good model stays the best
    out = mlipilot("validate", "--best")
    assert "validation PASSED" in out and "lattice_constant" in out and "phonons" in out
    assert json.loads((store / "trials" / "0001" / "validation.json").read_text())["passed"]
    assert "validated earlier" in mlipilot("validate")  # finished validations are not redone
    out = mlipilot("validate", "--trial", "2", rc=3)
    assert "validation FAILED" in out and "md_short" in out
    events = [json.loads(x) for x in (store / "ledger.jsonl").read_text().splitlines()]
    events = [e for e in events if e.get("event") == "validation"]
    assert [(e["validated_trial"], e["passed"]) for e in events] == [(1, True), (2, False)]
    log = mlipilot("log", "--all")
    assert "validated: pass" in log and "validated: fail (md_short" in log
    notes = subprocess.run(["git", "notes", "--ref=mlipilot-validation", "list"], cwd=run, capture_output=True,
                           text=True).stdout.split()
    assert len(notes) == 4  # two notes, each "note-object commit"
    # the report (in the store: a file in the run would fail the next trial) sets both verdicts side by side
    report = Path(mlipilot("report", str(run)).split("report: ")[-1].strip())
    assert report == store / "report" / "report.html"
    names = {"composite_vs_iteration", "verdict_grid", "ranking", "errors_per_group", "md_outcomes", "validation"}
    assert {p.stem for p in report.parent.glob("*.png")} == names
    assert (report.parent / "validation.png").stat().st_size > 5000
    page = report.read_text()
    assert page.count("<figure><img") == len(names) and "Validated trials" in page
    start = page.index("Validated trials")
    table = page[start:page.index("<h2>", start)]
    assert "pass" in table and "FAIL" in table and "md_short" in table
    assert_figures_render_in_chromium(report, tmp_path / "chromium-profile")
    # a typo in the run's validation spec fails before any job, with the file and the fix
    (store / "validation.yaml").write_text((store / "validation.yaml").read_text().replace("min:", "mn:", 1))
    err = mlipilot("validate", "--trial", "1", rc=2)
    assert "validation.yaml" in err and "did you mean 'min'?" in err


def test_only_md_checks_run_in_forked_children():
    """A check forked from a process that already used phonopy hung in phonopy's Rust thread pool (seen
    in CI): only the MD kinds, which use no such pool, run in children; the rest run in the parent."""
    from mlipilot.validation.checks import CHECK_KINDS

    forked = {name for name in CHECK_KINDS if CHECK_KINDS[name].forkable}
    assert forked == {"long_md", "nve_drift", "rdf", "diffusion", "structure_md", "structure_rdf", "molecular_md"}
