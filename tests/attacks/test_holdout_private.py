"""A generated benchmark's holdout is private: `init` draws the generator's seed with `secrets` and
keeps it in the store only, so a hostile train.py that reruns the public generator (benchmark.yaml's
seed 0, the run's size; seconds for cu_emt) gets other structures than the ones it is scored on.
No trial is needed: regenerating is what the agent could do, and the store's holdout is what scores."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from mlipilot.datasets import cu_emt
from mlipilot.errors import MLIPilotError
from mlipilot.integrity import DATA_SEED, load_seal, seal_problem
from mlipilot.rundir import init_run, read_data_seed


def structure_keys(*paths: Path) -> set[str]:
    """One hash per frame: species, positions and cell to 1e-6 Å (labels left out: the structures are the secret)."""
    keys = set()
    for path in paths:
        for f in read(path, index=":", format="extxyz"):
            text = " ".join(f.get_chemical_symbols()) + np.round(f.positions, 6).tobytes().hex() \
                + np.round(f.cell.array, 6).tobytes().hex()
            keys.add(hashlib.sha256(text.encode()).hexdigest())
    return keys


def small_run(where: Path, **kw) -> tuple[Path, Path]:
    root = init_run("cu_emt", where / "run", size="small", executor="debug", sandbox="none",
                    progress=lambda s: None, **kw)
    return root, where / "run.mlipilot-store"


def everything_the_agent_sees(root: Path) -> bytes:
    """The run directory's files and every git object (history, refs, rejected trials' commits)."""
    blobs = [p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts]
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=root,
                             capture_output=True, check=True).stdout
    return b"\n".join([*blobs, objects])


@pytest.mark.slow  # whole inits (data generated): 12-21 s, out of the fast lane
def test_the_public_generator_does_not_reproduce_a_private_holdout(tmp_path, private_data_seed):
    """The attack: regenerate with the public seed at the run's size, as train.py could in its sandbox."""
    root, store = small_run(tmp_path / "a")
    public = cu_emt.generate(tmp_path / "public", seed=0, size="small", verbose=False)
    holdout = structure_keys(store / "holdout.xyz")
    assert len(holdout) == len(read(store / "holdout.xyz", ":")) > 0
    assert not holdout & structure_keys(*public.values()), "the public generator reproduced holdout frames"
    # the seed is in the sealed store only: not in the run directory, its git objects or mlipilot.toml
    seed = read_data_seed(store)
    assert seed is not None and seed != 0 and seed.bit_length() > 32
    assert DATA_SEED in load_seal(store)["files"] and seal_problem(root, store) is None
    assert str(seed).encode() not in everything_the_agent_sees(root)
    # the training data the agent sees is the private draw's too, and the generator is deterministic in it
    again = cu_emt.generate(tmp_path / "again", seed=seed, size="small", verbose=False)
    assert structure_keys(again["holdout"]) == holdout
    assert structure_keys(root / "data" / "train.xyz") == structure_keys(again["train"])


def test_two_inits_draw_different_holdouts(tmp_path, private_data_seed):
    _, store_a = small_run(tmp_path / "a")
    _, store_b = small_run(tmp_path / "b")
    assert read_data_seed(store_a) != read_data_seed(store_b)
    assert not structure_keys(store_a / "holdout.xyz") & structure_keys(store_b / "holdout.xyz")


def test_a_changed_data_seed_breaks_the_seal(tmp_path):
    root, store = small_run(tmp_path / "a", data_seed=7)
    (store / DATA_SEED).write_text(json.dumps({"generator": "mlipilot.datasets.cu_emt", "seed": 0, "size": "small"}))
    assert DATA_SEED in (seal_problem(root, store) or "")


def test_data_seed_given_is_reproducible_and_said_so(tmp_path, capsys, private_data_seed):
    """`mlipilot init --data-seed 0`: the public generator's holdout, and one line saying anyone can regenerate it."""
    from mlipilot.cli import main

    run = tmp_path / "run"
    assert main(["init", "cu_emt", str(run), "--size", "small", "--executor", "debug", "--sandbox", "none",
                 "--data-seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "data seed 0 given: anyone who knows it can regenerate this run's holdout" in out
    public = cu_emt.generate(tmp_path / "public", seed=0, size="small", verbose=False)
    store = tmp_path / "run.mlipilot-store"
    assert structure_keys(store / "holdout.xyz") == structure_keys(public["holdout"]) and read_data_seed(store) == 0


def test_negative_data_seed_is_one_line_error(tmp_path):
    with pytest.raises(MLIPilotError, match="--data-seed: expected an integer >= 0, got -1"):
        small_run(tmp_path, data_seed=-1)
    assert not (tmp_path / "run").exists()


def test_data_seed_refused_for_a_benchmark_with_its_own_files(tmp_path, fast_benchmark):
    with pytest.raises(MLIPilotError, match="--data-seed: benchmark cu_fast has its own data files"):
        init_run(str(fast_benchmark), tmp_path / "run", executor="debug", sandbox="none", data_seed=3,
                 progress=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_bench_runs_share_one_private_holdout(tmp_path, monkeypatch, private_data_seed):
    """Every run of a bench gets the same privately drawn seed (their verdicts stay comparable), kept in
    each run's store and nowhere else under OUT; each run's sandbox hides the other runs' stores; a
    resumed bench reuses the seed."""
    from mlipilot import comparison

    monkeypatch.setattr(comparison, "launch_run", lambda *a, **k: "budget_iterations")  # no agent, no trial
    out = tmp_path / "bench"
    result = comparison.run_bench("cu_emt", ["expert", "random"], 1, 1, out, executor="debug", size="small",
                                  progress=print)
    assert not result["incomplete"]
    stores = [out / "runs" / f"{comparison.run_name(a, 0)}.mlipilot-store" for a in ("expert", "random")]
    seeds = {read_data_seed(s) for s in stores}
    assert len(seeds) == 1 and seeds != {0}
    (seed,) = seeds
    holdouts = {(s / "holdout.xyz").read_bytes() for s in stores}
    assert len(holdouts) == 1
    assert not structure_keys(stores[0] / "holdout.xyz") & structure_keys(
        *cu_emt.generate(tmp_path / "public", seed=0, size="small", verbose=False).values())
    outside = [p for p in out.rglob("*") if p.is_file() and not any(s in p.parents for s in stores)
               and ".git" not in p.parts]
    assert not [p for p in outside if str(seed).encode() in p.read_bytes()]
    for store in stores:
        assert {str(s) for s in stores} <= set(load_seal(store)["hide"])
    # resumed: the recorded seed, and a different --data-seed is refused
    assert comparison.bench_data_seed(out, result["manifest"], comparison.resolve_benchmark("cu_emt"), None) == seed
    with pytest.raises(MLIPilotError, match="made with another data seed"):
        comparison.bench_data_seed(out, result["manifest"], comparison.resolve_benchmark("cu_emt"), seed + 1)
