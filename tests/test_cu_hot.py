"""The hot Cu benchmark (cu_hot): it initialises like cu_emt (plus a [data] table from its
data_actions), its scorecard loads with the hot-frame constraint, and its data are cu_emt's training
data with hot frames in the private holdout only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from ase.io import read

from mlipilot.benchmark import resolve_benchmark, shipped_benchmarks
from mlipilot.datasets import cu_emt, cu_hot
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.scorecard.metrics import parse_metric
from mlipilot.scorecard.spec import load_spec


def positions(path: Path) -> list[bytes]:
    return [f.positions.round(6).tobytes() for f in read(path, ":", format="extxyz")]


def test_the_scorecard_loads_with_a_hot_constraint_and_a_hot_md_run():
    bench = resolve_benchmark("cu_hot")
    assert "cu_hot" in shipped_benchmarks() and bench.validation is not None
    spec = load_spec(bench.scorecard)
    hot = [c for c in spec.constraints if c.metric == "force_rmse_hot*"]
    assert hot and hot[0].max is not None and parse_metric("force_rmse_hot*").selector == "hot*"
    assert max(max(r.temperature_K) for r in spec.stability.runs) >= 3000
    # no more than twice cu_emt's MD atom-steps (the scorecard's cost is mostly MD)
    def atom_steps(s):
        return sum(4 * r.supercell**3 * r.steps for r in s.stability.runs)
    assert atom_steps(spec) <= 2 * atom_steps(load_spec(resolve_benchmark("cu_emt").scorecard))


@pytest.mark.slow  # whole inits (data generated): 12-21 s, out of the fast lane
def test_init_gives_cu_emt_training_data_and_keeps_the_hot_frames_in_the_holdout(tmp_path):
    root = init_run("cu_hot", tmp_path / "run", size="small", executor="debug", sandbox="none",
                    progress=lambda s: None, data_seed=5)
    store = tmp_path / "run.mlipilot-store"
    emt = cu_emt.generate(tmp_path / "emt", seed=5, size="small", verbose=False)
    for split in ("train", "valid"):
        assert positions(root / "data" / f"{split}.xyz") == positions(emt[split])
    hold = Counter(f.info["config_type"] for f in read(store / "holdout.xyz", ":"))
    assert {f"hot{t}" for t in cu_hot.HOT_TEMPERATURES_K} <= set(hold)
    seen = {f.info["config_type"] for f in read(root / "data" / "train.xyz", ":")}
    assert not any(ct.startswith("hot") for ct in seen), "hot frames leaked into the training data"
    assert (store / "scorecard.yaml").read_text() == (Path(resolve_benchmark("cu_hot").scorecard)).read_text()
    # benchmark.yaml's data_actions became the run's [data] table: data actions on, the budget sealed
    cfg = load_run_config(root)
    assert cfg.data.enabled and (cfg.data.calls, cfg.data.cpu_seconds) == (200, 3600.0)
    assert load_run_config(init_run("cu_emt", tmp_path / "emt_run", size="small", executor="debug", sandbox="none",
                                    progress=lambda s: None, data_seed=5)).data.enabled is False


def test_the_generator_is_deterministic_in_its_seed(tmp_path):
    a = cu_hot.hot_frames(seed=3, size="small")
    b = cu_hot.hot_frames(seed=3, size="small")
    c = cu_hot.hot_frames(seed=4, size="small")
    assert [f.positions.tobytes() for f in a] == [f.positions.tobytes() for f in b]
    assert a[0].positions.tobytes() != c[0].positions.tobytes()
    assert len(a) == 2 * len(cu_hot.HOT_TEMPERATURES_K)
