"""The holdout stays a holdout under data actions: an agent tries to sample from it (config_type globs,
path tricks, through the tools) and to add a holdout frame (a copy rattled by 1e-6 Å, translated and
permuted); each is refused and nothing reaches the training set."""

from __future__ import annotations

import git
import numpy as np
import pytest
from ase.io import read, write

from mlipilot.data_actions import DataActions, DataRefusal
from mlipilot.data_actions.guard import structure_hash
from mlipilot.data_actions.records import Labelled
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import ToolError, WorkspaceTools


@pytest.fixture
def run(tmp_path, fast_benchmark, monkeypatch):
    import mlipilot.rundir as rundir

    monkeypatch.setattr(rundir, "TEMPLATE", rundir.TEMPLATE + "\n[data]\nlabel_budget = {{ calls = 20 }}\n")
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    return load_run_config(root)


@pytest.mark.parametrize("source", ["../run.mlipilot-store/holdout.xyz", "/tmp/holdout.xyz", "holdout.xyz/..",
                                    "md*/../../holdout", "~/holdout*", "md1000\n", ""])
def test_sampling_from_a_path_is_refused(run, source):
    acts = DataActions(run, progress=lambda s: None)
    with pytest.raises(DataRefusal, match="config_type glob|matches no training frame"):
        acts.sample(source, driver="reference", method="rattle", n_frames=2)
    assert not (run.store / "data" / "pools").exists() or not list((run.store / "data" / "pools").glob("*.json"))


def test_sampling_starts_only_from_training_frames(run):
    holdout = read(run.store / "holdout.xyz", index=":")
    assert {a.info["config_type"] for a in holdout} & {"md1000", "rattle32"}  # the same config_types exist there
    acts = DataActions(run, progress=lambda s: None)
    pool = acts.sample("*", driver="reference", method="rattle", n_frames=6, structures=6, amplitude=0.01)
    starts = read(run.store / "data" / "pools" / f"{pool.id:04d}.starts.xyz", index=":")
    train = {structure_hash(a) for a in read(run.root / "data" / "train.xyz", index=":")}
    assert starts and all(structure_hash(a) in train for a in starts)
    assert not {structure_hash(a) for a in starts} & {structure_hash(a) for a in holdout}


def test_sampling_through_the_llm_tool_is_refused(run):
    tools = WorkspaceTools(run)
    out = tools.call("sample_data", {"source": "../../holdout.xyz", "method": "rattle", "n_frames": 2,
                                     "driver": "reference"})
    assert out.startswith("Refused:") and "config_type glob" in out
    with pytest.raises(ToolError, match="may not be edited"):  # nor can it write data/added/ itself
        tools.call("write_file", {"path": "data/added/9.xyz", "content": "1\n\nCu 0 0 0\n"})


def _planted(acts: DataActions, frames) -> Labelled:
    """A labelled set as if some action had produced these frames (what add() is handed)."""
    from mlipilot.data_actions.records import Pool, Selection

    pool = Pool(acts._next_id("pools"), "md1000", "reference", "rattle", {}, len(frames))
    write(acts._folder("pools") / f"{pool.id:04d}.xyz", frames, format="extxyz")
    acts._save("pools", pool)
    sel = Selection(acts._next_id("selections"), pool.id, "random", list(range(len(frames))), [0.0] * len(frames))
    acts._save("selections", sel)
    return acts.label(sel)


def test_adding_a_rattled_holdout_frame_is_refused(run):
    acts = DataActions(run, progress=lambda s: None)
    holdout = read(run.store / "holdout.xyz", index=":")
    rng = np.random.default_rng(0)
    rattled = holdout[0].copy()
    rattled.positions += rng.normal(0, 1e-6, rattled.positions.shape)
    moved = holdout[1].copy()
    moved.positions += [0.37, -1.1, 2.0]  # translated (wrapped by the cell) and atoms reordered
    moved = moved[rng.permutation(len(moved))]
    moved.wrap()
    genuine = read(run.root / "data" / "train.xyz", index="0")
    genuine.positions += rng.normal(0, 0.05, genuine.positions.shape)
    for a in (rattled, moved, genuine):
        a.calc = None
        a.info = {"config_type": holdout[0].info["config_type"]}
        for k in list(a.arrays):
            if k.startswith("REF_"):
                del a.arrays[k]
    lab = _planted(acts, [rattled, moved, genuine])
    head = git.Repo(run.root).head.commit.hexsha
    out = acts.add(lab)
    assert out.frames_added == 1 and len(out.refused) == 2
    assert all("holdout.xyz frame" in r["reason"] for r in out.refused)
    added = read(run.root / out.file, index=":")
    assert len(added) == 1 and np.allclose(added[0].positions, genuine.positions)
    lab = _planted(acts, [rattled])
    out = acts.add(lab)
    assert out.commit is None and out.frames_added == 0 and "refused" in out.message
    assert git.Repo(run.root).head.commit.parents[0].hexsha == head  # only the genuine frame's commit
