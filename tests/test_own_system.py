"""A user's own systems end to end through the `mlipilot` console script: a two-element periodic
alloy (EMT-labelled Cu–Au, the README's example) and a small molecular box (H2O, CH4, NH3 in a
periodic cell, EMT-labelled, with its own md_structures file) — init checks the data, the
baseline and an expert trial train for real and MD runs on the user's own structures."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import molecule
from ase.io import write

from mlipilot.datasets.alloy_emt import write_benchmark
from mlipilot.datasets.cu_emt import _label
from mlipilot.errors import MLIPilotError
from mlipilot.rundir import init_run

BOX_SCORECARD = {
    "name": "molbox",
    "constraints": [
        {"metric": "energy_rmse", "max": 50.0, "unit": "meV/atom"},
        {"metric": "force_rmse_H", "max": 800.0, "unit": "meV/Å"},
        {"metric": "md_failed_runs", "max": 0, "scale": 1, "unit": "count"},
        {"metric": "us_per_atom_step", "max": 5000.0, "unit": "µs/atom/step"},
    ],
    "composite": {"terms": [{"metric": "energy_rmse", "weight": 1.0, "scale": 50.0},
                            {"metric": "force_rmse", "weight": 1.0, "scale": 800.0}]},
    "stability": {"kind": "structures", "structures": {"max_structures": 2}, "runs": [{"name": "nvt300", "temperature_K": 300, "steps": 40,
                                                  "timestep_fs": 0.5}],
                  "min_distance_factor": 0.4, "max_temperature_factor": 4.0},
    "throughput": {"steps": 5, "warmup_steps": 2, "repeats": 2, "timestep_fs": 0.5},
}


def molecular_box(rng: np.random.Generator) -> Atoms:
    atoms = Atoms(cell=[8.0] * 3, pbc=True)
    for i, name in enumerate(("H2O", "CH4", "NH3", "H2O")):
        m = molecule(name)
        m.rotate(rng.uniform(0, 360), rng.normal(size=3))
        m.translate(np.array([(i % 2) * 4 + 2, (i // 2) * 4 + 2, 4.0]) - m.get_center_of_mass())
        atoms += m
    atoms.positions += rng.normal(0, 0.04, atoms.positions.shape)
    return atoms


def write_box_benchmark(d: Path) -> Path:
    rng = np.random.default_rng(3)
    frames = [_label(molecular_box(rng), "box") for _ in range(40)]
    d.mkdir(parents=True, exist_ok=True)
    write(d / "train.xyz", frames[:28])
    write(d / "valid.xyz", frames[28:32])
    write(d / "holdout.xyz", frames[32:])
    md = [molecular_box(rng) for _ in range(2)]
    write(d / "md.xyz", md)
    (d / "scorecard.yaml").write_text(yaml.safe_dump(BOX_SCORECARD, allow_unicode=True))
    (d / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": "molbox", "scorecard": "scorecard.yaml",
        "data": {"train": "train.xyz", "valid": "valid.xyz", "holdout": "holdout.xyz", "md_structures": "md.xyz"}}))
    return d


def mlipilot(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    p = subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def trial_rows(run: Path) -> list[dict]:
    store = run.with_name(run.name + ".mlipilot-store")
    rows = [json.loads(line) for line in (store / "ledger.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("verdict") and r.get("trial")]


@pytest.mark.slow  # two `mlipilot init` of generated benchmarks
def test_expert_e0s_come_from_the_benchmark_or_a_fit(tmp_path):
    """A least-squares fit, unless the benchmark's isolated atoms leave less to learn on the validation
    split (issue 25: EMT's isolated atoms made the alloy 4x worse); never copper's."""
    from mlipilot.agents.base import IterationLimits
    from mlipilot.agents.expert import ExpertAgent
    from mlipilot.records import TrialRecord
    from mlipilot.run_config import load_run_config
    from mlipilot.workspace_tools import WorkspaceTools

    alloy = write_benchmark(tmp_path / "cuau", size="small")
    box = write_box_benchmark(tmp_path / "box")
    expected = {}
    for name, bench in (("cuau", alloy), ("box", box)):
        mlipilot("init", str(bench), str(tmp_path / f"run-{name}"), "--sandbox", "none", cwd=tmp_path)
        tools = WorkspaceTools(load_run_config(tmp_path / f"run-{name}"))
        done = [TrialRecord(trial=n, verdict="accepted", status="finished") for n in (1, 2, 3)]
        tools.history = type("ThreeTrialsDone", (), {"trials": staticmethod(lambda: done)})()
        result = ExpertAgent().run_iteration(tools, "", IterationLimits())
        cfg = yaml.safe_load((tmp_path / f"run-{name}" / "train" / "config.yaml").read_text())
        expected[name] = (result.text, yaml.safe_load(cfg["E0s"]))
    # EMT's isolated atoms (3.51, 3.8 eV) leave the whole cohesive energy to learn: the fit wins, said with both numbers
    assert expected["cuau"][1] != {29: 3.51, 79: 3.8} and set(expected["cuau"][1]) == {29, 79}
    assert "least-squares fit" in expected["cuau"][0] and "with the isolated atoms" in expected["cuau"][0]
    box_e0s = expected["box"][1]
    assert set(box_e0s) == {1, 6, 7, 8} and "least-squares" in expected["box"][0]
    # the fit reproduces the training energies' composition trend: residual per atom far below the spread
    from ase.io import read

    frames = read(box / "train.xyz", index=":")
    resid = [(f.info["REF_energy"] - sum(box_e0s[z] for z in f.numbers)) / len(f) for f in frames]
    assert abs(np.mean(resid)) < 1e-6


@pytest.mark.slow
def test_alloy_init_baseline_and_expert_trial_with_md_on_own_structures(tmp_path):
    bench = write_benchmark(tmp_path / "cuau", size="small")
    run = tmp_path / "run"
    out = mlipilot("init", str(bench), str(run), cwd=tmp_path).stdout
    assert "cuau_emt data holdout" in out and "elements Au,Cu" in out
    assert "Cu, Au" in (run / "program.md").read_text() and "$" not in (run / "program.md").read_text()
    mlipilot("run", "--agent", "expert", "--iterations", "1", cwd=run)  # + the harness's baseline
    rows = trial_rows(run)
    assert [r["verdict"] for r in rows][0] == "accepted" and rows[1]["verdict"] in ("accepted", "rejected"), rows
    for r in rows:
        m = r["metrics"]
        assert {"force_rmse_Au", "force_rmse_Cu", "force_rmse_max_group", "stress_rmse", "us_per_atom_step",
                "md_max_volume_ratio", "md_min_distance_ratio"} <= set(m)
        names = sorted(m["md_runs"])
        assert any(n.startswith("npt600_") for n in names) and any(n.startswith("nvt900_") for n in names)
        assert all(v["steps"] > 0 for v in m["md_runs"].values())
    shown = mlipilot("show", "2", cwd=run).stdout
    assert "loss re-weighting" in shown


@pytest.mark.slow
def test_molecular_box_with_its_own_md_structures(tmp_path):
    bench = write_box_benchmark(tmp_path / "box")
    run = tmp_path / "run"
    mlipilot("init", str(bench), str(run), cwd=tmp_path)
    store = run.with_name("run.mlipilot-store")
    assert "md_structures.xyz" in json.loads((store / "seal.json").read_text())["files"]
    assert "H, C, N, O" in (run / "program.md").read_text()
    mlipilot("run", "--agent", "expert", "--iterations", "1", cwd=run)  # + the harness's baseline
    rows = trial_rows(run)
    assert len(rows) == 2 and all(r["verdict"] in ("accepted", "rejected") for r in rows), rows
    for r in rows:
        names = sorted(r["metrics"]["md_runs"])
        assert names == ["nvt300_0_CH11NO2", "nvt300_1_CH11NO2"], names  # the md.xyz boxes, not the holdout
        assert "force_rmse_H" in r["metrics"]


@pytest.fixture(scope="module")
def alloy_bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("alloy") / "cuau", size="small")


@pytest.mark.parametrize("how", ["init_run", pytest.param("console script", marks=pytest.mark.slow)])
@pytest.mark.parametrize("file, edit, field, hint", [
    ("scorecard.yaml", lambda d: d["stability"].update(min_distnce_factor=0.5), "stability.min_distnce_factor",
     "did you mean 'min_distance_factor'?"),
    ("scorecard.yaml", lambda d: d["stability"].update(refrence={"name": "emt"}), "stability.refrence",
     "did you mean 'reference'?"),
    ("benchmark.yaml", lambda d: d.update(isolated_atom={"Cu": 1.0}), "isolated_atom", "did you mean 'isolated_atoms'?"),
    ("benchmark.yaml", lambda d: d["data"].update(md_structure="md.xyz"), "data.md_structure",
     "did you mean 'md_structures'?"),
])
def test_a_misspelled_key_fails_init_with_the_nearest_name_and_creates_nothing(tmp_path, alloy_bench, file, edit,
                                                                                field, hint, how):
    """In-process (init_run, what `mlipilot init` calls) and, marked slow, through the console script."""
    bench = tmp_path / "cuau"
    shutil.copytree(alloy_bench, bench)
    d = yaml.safe_load((bench / file).read_text())
    edit(d)
    (bench / file).write_text(yaml.safe_dump(d, allow_unicode=True))
    if how == "init_run":
        with pytest.raises(MLIPilotError) as e:
            init_run(str(bench), tmp_path / "run", progress=lambda s: None)
        err = str(e.value)
    else:
        p = subprocess.run(["mlipilot", "init", str(bench), str(tmp_path / "run")], capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 2, p.stdout + p.stderr
        err = p.stderr.strip()
    # the misspelt key's line (init goes on with the name it meant and reports what else it finds, issue 36:
    # md_structures then names a file the folder lacks)
    hits = [x for x in err.splitlines() if f"'{field}'" in x]
    assert len(hits) == 1 and file in hits[0] and hint in hits[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.mlipilot-store").exists()
