"""Shared fixtures: small real data, real (tiny) MACE models, and a fast test benchmark."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mlipilot_testkit import FIX, ROOT, SHIPPED_MODEL, train_with_template, untrained_mace, user_benchmark

os.environ.setdefault("OMP_NUM_THREADS", "1")


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


@pytest.fixture(scope="session")
def fast_benchmark(tmp_path_factory, default_data) -> Path:
    return user_benchmark(tmp_path_factory.mktemp("bench_fast"), default_data, "cu_fast")
