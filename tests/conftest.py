"""Shared fixtures: small real data, real (tiny) MACE models, and a fast test benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlipilot_testkit import copy_trainer, exported, untrained_mace  # noqa: F401  -- re-exported

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # Runs, stores and test models live outside /tmp, as users' do: the training sandbox makes /tmp
    # private, so a store under /tmp would be hidden by accident rather than by the harness.
    if not config.option.basetemp and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="mlipilot-pytest-", dir="/var/tmp")


def pytest_unconfigure(config):
    base = str(config.option.basetemp or "")
    if "/var/tmp/mlipilot-pytest-" in base and not os.environ.get("MLIPILOT_KEEP_TEST_TMP"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["MLIPILOT_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> dict[str, Path]:
    from mlipilot.datasets import cu_emt

    return cu_emt.generate(tmp_path_factory.mktemp("cu_small"), seed=0, size="small", verbose=False)


@pytest.fixture(scope="session")
def default_data(tmp_path_factory) -> dict[str, Path]:
    from mlipilot.datasets import cu_emt

    return cu_emt.generate(tmp_path_factory.mktemp("cu_default"), seed=0, size="default", verbose=False)


def train_with_template(workdir: Path, data: dict[str, Path], **config_updates) -> Path:
    """Train for real with the shipped workspace's train.py; returns the model path."""
    shutil.copytree(ROOT / "workspace_template" / "cu_emt" / "train", workdir / "train")
    (workdir / "data").mkdir()
    for split in ("train", "valid"):
        shutil.copy(data[split], workdir / "data" / f"{split}.xyz")
    cfg_path = workdir / "train" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(config_updates)
    cfg_path.write_text(yaml.safe_dump(cfg))
    model = workdir / "model.model"
    subprocess.run([sys.executable, "train/train.py", "--out-dir", str(workdir / "out"), "--model-out", str(model)],
                   cwd=workdir, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return model


FIX = {"energy_weight": 100.0, "forces_weight": 10.0, "max_num_epochs": 10}  # the benchmark's known fix
SHIPPED_MODEL = ROOT / "tests" / "data" / "cu_fix.model"  # made by tests/data/make_models.py


@pytest.fixture(scope="session")
def good_model(tmp_path_factory, default_data) -> Path:
    """The benchmark's known fix (energy re-weighting, 10 epochs) on the default Cu data: the shipped
    copy (tests/data/make_models.py), so only the tests marked slow train."""
    if SHIPPED_MODEL.is_file() and not os.environ.get("MLIPILOT_TRAIN_TEST_MODELS"):
        target = tmp_path_factory.mktemp("good") / "model.model"
        shutil.copy(SHIPPED_MODEL, target)
        return target
    return train_with_template(tmp_path_factory.mktemp("good"), default_data, **FIX)


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory) -> Path:
    return untrained_mace(tmp_path_factory.mktemp("untrained") / "untrained.model", [29], [0.0])


FAST_SCORECARD = {
    "name": "cu_emt_fast", "element": "Cu", "lattice_a": 3.59,
    "constraints": [
        {"metric": "energy_rmse", "max": 30.0, "unit": "meV/atom"},
        {"metric": "force_rmse", "max": 100.0, "unit": "meV/Å"},
        {"metric": "md_failed_runs", "max": 0, "scale": 1, "unit": "count"},
    ],
    "composite": {"terms": [{"metric": "energy_rmse", "weight": 1.0, "scale": 30.0},
                            {"metric": "force_rmse", "weight": 1.0, "scale": 100.0}]},
    "noise_margin": 0.02,
    "stability": {"runs": [{"name": "nvt1000_32", "supercell": 2, "temperature_K": 1000, "steps": 40},
                           {"name": "ramp_32", "supercell": 2, "temperature_K": [300, 3000], "steps": 60}],
                  "min_distance_A": 1.8, "max_temperature_factor": 2.0, "reference": "emt",
                  "reference_force_rmse_meV_A": 400, "sample_every": 20},
    "throughput": {"supercell": 2, "steps": 5, "warmup_steps": 2, "repeats": 3},
}


def user_benchmark(d: Path, data: dict[str, Path], name: str) -> Path:
    """A user-style benchmark folder: own data files, a fast scorecard, the shipped workspace."""
    d.mkdir(exist_ok=True)
    for split in ("train", "valid", "holdout"):
        shutil.copy(data[split], d / f"{split}.xyz")
    (d / "scorecard.yaml").write_text(yaml.safe_dump(FAST_SCORECARD, allow_unicode=True))
    shutil.copytree(ROOT / "workspace_template" / "cu_emt", d / "workspace")
    (d / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": name, "scorecard": "scorecard.yaml", "workspace": "workspace",
        "data": {"train": "train.xyz", "valid": "valid.xyz", "holdout": "holdout.xyz"}}))
    return d


@pytest.fixture(scope="session")
def fast_benchmark(tmp_path_factory, default_data) -> Path:
    return user_benchmark(tmp_path_factory.mktemp("bench_fast"), default_data, "cu_fast")
