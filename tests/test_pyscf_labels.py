"""Real PySCF B3LYP/6-31G(d) labels on tiny molecules: forces against a finite difference of the
energy, agreement with the shipped pool, the cache, resume, and the SCF-failure path."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from mlipilot.datasets import qm7_b3lyp
from mlipilot.labels.pyscf_dft import B3LYP_631GD, DFTMethod, LabelCache, compute, label_frames, label_key

WATER = Atoms("OH2", positions=[[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]])
H2 = Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.76]])


@pytest.mark.slow  # five B3LYP calculations
def test_forces_match_a_finite_difference_of_the_energy():
    r = compute(WATER)
    assert r["converged"]
    h = 1e-3
    for atom, axis in [(1, 1), (0, 2)]:
        plus, minus = WATER.copy(), WATER.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(compute(plus)["energy"] - compute(minus)["energy"]) / (2 * h)
        assert r["forces"][atom][axis] == pytest.approx(fd, abs=2e-3)  # eV/Å


def test_reproduces_the_shipped_labels():
    methane = read(qm7_b3lyp.pool_path(), index=0)
    r = compute(methane)
    assert r["energy"] == pytest.approx(methane.info["REF_energy"], abs=1e-6)
    np.testing.assert_allclose(r["forces"], methane.arrays["REF_forces"], atol=1e-5)


def test_cache_resume_and_scf_failure(tmp_path):
    cache = tmp_path / "cache"
    # resume: one frame was labelled by an earlier (interrupted) run
    LabelCache(cache).put(label_key(H2), compute(H2) | {"key": label_key(H2)})
    lines = []
    labelled, failures = label_frames([H2, WATER], cache, progress=lines.append)
    assert "1 cached, 1 to compute" in lines[0] and len(labelled) == 2 and failures == []
    assert labelled[1].info["REF_energy"] < -2000 and labelled[1].arrays["REF_forces"].shape == (3, 3)
    lines.clear()
    label_frames([H2, WATER], cache, progress=lines.append)
    assert "2 cached, 0 to compute" in lines[0]
    # SCF failure: recorded in the cache, the frame dropped and reported
    one_cycle = DFTMethod(conv_tol=1e-20, max_cycle=2)  # cannot converge
    labelled, failures = label_frames([WATER], cache, method=one_cycle, progress=lambda s: None)
    assert labelled == [] and failures[0]["reason"] == "SCF not converged"
    assert LabelCache(cache).get(label_key(WATER, one_cycle))["converged"] is False
    assert label_key(WATER, one_cycle) != label_key(WATER, B3LYP_631GD)


def test_split_by_molecule_has_unseen_molecules(tmp_path):
    paths = qm7_b3lyp.generate(tmp_path, seed=0, verbose=False)
    frames = {k: read(p, ":") for k, p in paths.items()}
    train_mols = {f.info["smiles"] for f in frames["train"] + frames["valid"]}
    unseen = [f for f in frames["holdout"] if f.info["config_type"] == "unseen_molecule"]
    seen = [f for f in frames["holdout"] if f.info["config_type"] == "seen_molecule"]
    assert unseen and seen
    assert not {f.info["smiles"] for f in unseen} & train_mols
    assert {f.info["smiles"] for f in seen} <= train_mols
    assert max(np.abs(f.arrays["REF_forces"]).max() for fs in frames.values() for f in fs) <= 30.0


@pytest.mark.slow  # B3LYP labels in submitit jobs, twice
def test_mlipilot_data_extends_the_set_with_submitit_jobs(tmp_path):
    import json
    import os
    import subprocess

    out = tmp_path / "extended.xyz"
    env = {**os.environ, "MLIPILOT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = ["mlipilot", "data", "qm7_b3lyp", "--size", "tiny", "--out", str(out), "--executor", "local"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["new"] == 3 and meta["failed"] == [] and meta["method"]["xc"] == "b3lyp"
    frames = read(out, ":")
    assert sum(f.info.get("extended_seed") == 1 for f in frames) == 3
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)  # resumes: everything cached
    assert "3 cached, 0 to compute" in p.stdout
