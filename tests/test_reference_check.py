"""A user's own system, second pass (issue 25), through the console script: `init` proves the
scorecard winnable by running its MD (and the validation spec's MD, briefly) with the reference
calculator; `validate` works from inside the run directory, refuses a spec added after init unless
re-sealed, streams a progress line per check, and checks the alloy example's own structures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from mlipilot_testkit import copy_trainer, untrained_mace

from mlipilot.datasets.alloy_emt import write_benchmark


def mlipilot(*args: str, cwd: Path, rc: int = 0, timeout: int = 900) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == rc, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("alloy") / "mybench", size="small")


def edited(example: Path, tmp_path: Path, edit, file: str = "scorecard.yaml") -> Path:
    bench = tmp_path / "mybench"
    shutil.copytree(example, bench)
    d = yaml.safe_load((bench / file).read_text())
    edit(d)
    (bench / file).write_text(yaml.safe_dump(d, allow_unicode=True))
    return bench


def cold_start_on_hot_snapshot(d: dict) -> None:
    """The issue's unwinnable run: MD from a 1200 K snapshot thermostatted far below it."""
    d["stability"]["structures"] = {"config_types": ["md1200"], "max_structures": 1, "min_atoms": 32}
    d["stability"]["runs"] = [{"name": "cold100", "temperature_K": [100, 300], "steps": 60}]
    d["stability"]["max_temperature_factor"] = 2.0


def test_init_refuses_a_scorecard_its_own_reference_fails(example, tmp_path):
    bench = edited(example, tmp_path, cold_start_on_hot_snapshot)
    err = mlipilot("init", "mybench", "runs/cuau", "--sandbox", "none", cwd=tmp_path, rc=2)
    assert "scorecard.yaml: stability run 'cold100_0_" in err and "own reference emt" in err
    assert "temperature runaway" in err and "start the run at the structures' temperature" in err
    assert len(err.strip().splitlines()) == 1 or "error:" in err.strip().splitlines()[-1]
    assert not (tmp_path / "runs").exists() and bench.is_dir()


@pytest.mark.slow  # init runs the reference through the scorecard and the validation MD
def test_init_refuses_a_validation_md_check_its_reference_fails(example, tmp_path):
    def cold(d: dict) -> None:
        d["checks"].append({"name": "md_cold", "kind": "structure_md", "min": 1.0, "params": {
            "config_types": ["md1200"], "max_structures": 1, "temperature_K": 100, "steps": 500}})

    edited(example, tmp_path, cold, "validation.yaml")
    err = mlipilot("init", "mybench", "run", "--sandbox", "none", cwd=tmp_path, rc=2)
    assert "validation.yaml: check 'md_cold'" in err and "temperature runaway" in err
    assert not (tmp_path / "run").exists()


def test_init_without_a_reference_says_the_scorecard_is_unverified(example, tmp_path):
    def no_reference(d: dict) -> None:
        d["stability"].pop("reference")
        d["stability"].pop("reference_force_rmse_meV_A")

    edited(example, tmp_path, no_reference)
    out = mlipilot("init", "mybench", "run", "--sandbox", "none", cwd=tmp_path)
    assert "scorecard unverified" in out and "names no stability.reference" in out


@pytest.mark.slow  # a full init, the reference check included, then three `validate` calls
def test_example_passes_init_records_its_folder_and_validate_refuses_an_unsealed_spec(example, tmp_path):
    bench = tmp_path / "mybench"
    shutil.copytree(example, bench)
    meta = yaml.safe_load((bench / "benchmark.yaml").read_text())
    meta.pop("validation")  # a benchmark without a spec at init ...
    (bench / "benchmark.yaml").write_text(yaml.safe_dump(meta))
    out = mlipilot("init", "mybench", "runs/cuau", "--sandbox", "none", cwd=tmp_path)
    assert "reference emt: passes the scorecard's 4 MD run(s) and the validation spec's MD (briefly)" in out
    assert "one is derived from the scorecard" in out  # ... gets one derived from the scorecard, sealed
    run = tmp_path / "runs" / "cuau"
    store = run.with_name("cuau.mlipilot-store")
    derived = yaml.safe_load((store / "validation.yaml").read_text())
    assert {c["kind"] for c in derived["checks"]} == {"structure_md", "structure_volume", "structure_bulk_modulus",
                                                      "structure_rdf"}
    assert [c["params"]["steps"] for c in derived["checks"][:2]] == [300, 300]  # 5x the scorecard's 60
    cfg = tomllib.loads((run / "mlipilot.toml").read_text())
    assert cfg["run"]["benchmark"] == str(bench.resolve())  # resolvable from inside the run directory
    # ... and one named later: refused, from inside the run directory, with the fix
    (bench / "benchmark.yaml").write_text(yaml.safe_dump({**meta, "validation": "validation.yaml"}))
    err = mlipilot("validate", "--best", cwd=run, rc=2)
    assert "mybench/validation.yaml: differs from the validation spec this run sealed" in err
    assert "--reseal-spec" in err and len(err.strip().splitlines()) == 1
    out = mlipilot("validate", "--best", "--reseal-spec", cwd=run, rc=2)  # sealed; no trial to validate yet
    assert "sealed into" in out and "no accepted, scored trial yet" in out
    assert json.loads((store / "validation.resealed.json").read_text())["sha256"]
    err = mlipilot("validate", "--best", cwd=run, rc=2)  # the resealed spec is used from now on
    assert "no accepted, scored trial yet" in err
    (store / "validation.resealed.yaml").write_text((store / "validation.resealed.yaml").read_text() + "\n# edited\n")
    assert "changed since it was sealed" in mlipilot("validate", "--best", cwd=run, rc=2)


@pytest.mark.slow  # init + one scored trial (a copied random-weight model) + the example's validation
def test_alloy_example_validates_on_its_own_structures_with_progress_lines(example, tmp_path):
    shutil.copytree(example, tmp_path / "mybench")
    mlipilot("init", "mybench", "runs/cuau", "--sandbox", "none", "--executor", "local", cwd=tmp_path)
    run = tmp_path / "runs" / "cuau"
    model = untrained_mace(tmp_path / "alloy.model", [29, 79], [-0.1, -0.2])
    (run / "train" / "train.py").write_text(copy_trainer(model))
    mlipilot("trial", "-m", "baseline: a random-weight alloy model", cwd=run)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(["mlipilot", "validate", "--best"], cwd=run, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    lines, streamed = [], False
    for line in p.stdout:
        lines.append(line)
        if "[2/5] bulk_modulus" in line:
            streamed = p.poll() is None  # shown while the job still runs, not at the end
    p.wait(timeout=900)
    out = "".join(lines)
    assert p.returncode in (0, 3), out[-3000:]
    assert streamed and "[1/5] volume (structure_volume)" in out and "[5/5] rdf_density_npt" in out
    for quantity in ("V0_bulk_strain", "B_vacancy", "completed_0_", "rdf_md1200"):
        assert quantity in out, out[-3000:]
    assert "validation PASSED" in out or "validation FAILED" in out


@pytest.mark.slow  # the example's whole validation with EMT as the model (~40 s on one core)
def test_the_reference_passes_the_alloy_examples_own_validation(example):
    """What init checks only briefly, in full: no check of the example's spec is unwinnable."""
    from ase.calculators.emt import EMT
    from ase.io import read

    from mlipilot.validation.checks import CHECK_KINDS
    from mlipilot.validation.runner import context
    from mlipilot.validation.spec import load_validation_spec

    spec = load_validation_spec(example / "validation.yaml")
    holdout = read(example / "holdout.xyz", index=":", format="extxyz")
    ctx = context(spec, example / "scorecard.yaml", holdout, [], lambda s: None)
    for check in spec.checks:
        for m in CHECK_KINDS[check.kind].load()(EMT(), ctx, dict(check.params)):
            assert check.bound_for(m.quantity).ok(m.error), (check.name, m)


@pytest.mark.parametrize("card", ["scorecards/cu_emt.yaml", "scorecards/qm7_b3lyp.yaml", "alloy"])
def test_a_derived_validation_spec_loads_for_every_kind(card, example, tmp_path):
    """bulk, molecules and structures: init's derived spec is a valid spec with longer MD."""
    from mlipilot.rundir import default_validation_text
    from mlipilot.scorecard.spec import load_spec
    from mlipilot.validation.spec import load_validation_spec

    path = example / "scorecard.yaml" if card == "alloy" else Path(__file__).resolve().parent.parent / card
    spec = load_spec(path)
    (tmp_path / "v.yaml").write_text(default_validation_text(spec))
    derived = load_validation_spec(tmp_path / "v.yaml")
    md = [dict(c.params)["steps"] for c in derived.checks if c.name.startswith("md_")]
    assert md == [5 * r.steps for r in spec.stability.runs]
