"""Fast checks of the seal's parts (no trial): links out of the sandbox's folder, model descriptions
too large to build, the sandbox probe, one launcher per run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mlipilot.errors import MLIPilotError
from mlipilot.model_export import ExportError, size_problem, take_export
from mlipilot.run_lock import holder, run_lock
from mlipilot.sandbox import Bubblewrap, SandboxConfig, runtime_paths


def test_export_taken_without_following_links(tmp_path):
    other = tmp_path / "trial1" / "model"
    other.mkdir(parents=True)
    (other / "model.json").write_text("{}")
    (other / "weights.pt").write_bytes(b"w")
    out = tmp_path / "trial2" / "out"
    out.mkdir(parents=True)
    (out / "export").symlink_to(other)  # a planted directory link
    with pytest.raises(ExportError, match="not a link"):
        take_export(out, tmp_path / "trial2" / "model")
    (out / "export").unlink()
    (out / "export").mkdir()
    (out / "export" / "model.json").symlink_to(other / "model.json")  # a planted file link
    (out / "export" / "weights.pt").write_bytes(b"w")
    with pytest.raises(ExportError, match="link or special file"):
        take_export(out, tmp_path / "trial2" / "model2")
    (out / "export" / "model.json").unlink()
    (out / "export" / "model.json").write_text("{}")
    dest = take_export(out, tmp_path / "trial2" / "model3")
    assert sorted(p.name for p in dest.iterdir()) == ["model.json", "weights.pt"]


def test_a_model_too_large_is_refused_before_it_is_built():
    t0 = time.time()
    assert "exceeds the largest num_channels" in size_problem({"hidden_irreps": {"irreps": "100000x0e"}})
    assert "max_L" in size_problem({"hidden_irreps": {"irreps": "16x0e+16x5o"}})
    assert size_problem({"hidden_irreps": {"irreps": "64x0e+64x1o"}, "correlation": 3}) is None
    caps = {"num_channels": 32}  # knobs.yaml's range
    assert "(32" in size_problem({"hidden_irreps": {"irreps": "64x0e"}}, caps)
    assert "correlation" in size_problem({"correlation": [3, 9]})
    assert time.time() - t0 < 5


def test_the_probe_sees_no_capabilities_and_no_store(tmp_path):
    assert Bubblewrap(SandboxConfig()).problem() is None  # it checks uid != 0 and CapEff 0 inside
    store = tmp_path / "run.mlipilot-store"
    store.mkdir()
    assert not any(p == store or p in store.parents for p in runtime_paths())


def test_one_launcher_per_run(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    holder_proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from mlipilot.run_lock import run_lock\n"
         f"with run_lock({str(store)!r}, 'mlipilot trial -m first'):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert holder_proc.stdout.readline().strip() == "held"
    with pytest.raises(MLIPilotError) as e:
        with run_lock(store):
            pass
    msg = str(e.value)
    assert f"pid {holder_proc.pid}" in msg and "mlipilot trial -m first" in msg and "\n" not in msg
    os.kill(holder_proc.pid, signal.SIGKILL)  # a holder that died releases the run
    holder_proc.wait()
    with run_lock(store, "mlipilot run"):
        with run_lock(store):  # re-entrant within one process
            assert holder(store)["pid"] == os.getpid()

