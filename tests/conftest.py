"""Shared fixtures: small real data, real (tiny) MACE models, and a fast test benchmark."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import pytest
from mlipilot_testkit import FIX, SHIPPED_MODEL, train_with_template, untrained_mace, user_benchmark

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    # Runs, stores and test models live outside /tmp, as users' do: the training sandbox makes /tmp
    # private, so a store under /tmp would be hidden by accident rather than by the harness.
    if not config.option.basetemp and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="mlipilot-pytest-", dir="/var/tmp")


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(config, items):
    """One test that needs the default Cu set goes first, then every test that does not, then the other
    tests that need it: one xdist worker generates the set (~10 s, once per session: _made_once) while
    the other runs tests, instead of both waiting for it at the start. Otherwise the order is kept."""
    needs = [item for item in items if "default_data" in getattr(item, "fixturenames", ())]
    if needs:
        rest = [item for item in items if "default_data" not in getattr(item, "fixturenames", ())]
        items[:] = needs[:1] + rest + needs[1:]


@pytest.fixture(autouse=True)
def _no_slurm_unless_marked(request, monkeypatch):
    """A test not marked `slurm` sees no Slurm, as on a newcomer's machine without a cluster (the fast
    lane there), even where CI has started one: submitit's Slurm executor cannot find srun."""
    if request.node.get_closest_marker("slurm") is None:
        import submitit

        monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: -1))


def pytest_unconfigure(config):
    base = str(config.option.basetemp or "")
    if "/var/tmp/mlipilot-pytest-" in base and not os.environ.get("MLIPILOT_KEEP_TEST_TMP"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["MLIPILOT_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session", autouse=True)
def _public_data_seed():
    """In-process inits of generated benchmarks use the public seed 0 unless a test asks for
    `private_data_seed`: the numbers the tests assert were measured on that data, and one cached set
    serves them all. (The console script draws privately: pass --data-seed 0 where the data matters.)"""
    from mlipilot.benchmark import Benchmark

    _private_draw.append(Benchmark.__dict__["draw_data_seed"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Benchmark, "draw_data_seed", staticmethod(lambda: 0))
        yield


_private_draw: list = []  # the real Benchmark.draw_data_seed


@pytest.fixture
def private_data_seed(monkeypatch):
    """`init` and `bench` draw their data seed privately, as they do outside the tests."""
    from mlipilot.benchmark import Benchmark

    monkeypatch.setattr(Benchmark, "draw_data_seed", _private_draw[0])


def _made_once(tmp_path_factory, name: str, make) -> dict[str, Path]:
    """`make(folder)` once per test session, not once per xdist worker: the workers share their base
    temp's parent, and the first to get here makes it while the others wait (generating the default Cu
    set is ~10 s of CPU per worker on the 2-core CI machine). Tests only read what it returns."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    done = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            done.write_text(json.dumps({k: str(v) for k, v in make(root / name).items()}))
    return {k: Path(v) for k, v in json.loads(done.read_text()).items()}


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> dict[str, Path]:
    from mlipilot.datasets import cu_emt

    return _made_once(tmp_path_factory, "cu_small",
                      lambda d: cu_emt.generate(d, seed=0, size="small", verbose=False))


@pytest.fixture(scope="session")
def default_data(tmp_path_factory) -> dict[str, Path]:
    from mlipilot.datasets import cu_emt

    return _made_once(tmp_path_factory, "cu_default",
                      lambda d: cu_emt.generate(d, seed=0, size="default", verbose=False))




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
