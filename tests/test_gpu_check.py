"""benchmarks/gpu_check.py runs on a CPU-only machine (issue 37): the real CPU trial, torch-sim's
replica engine against ASE on the CPU, and a line for each part that needs CUDA saying it was skipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # an init and a real (small) training
def test_gpu_check_runs_on_the_cpu_and_says_what_it_skipped(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--size", "small", "--keep",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=1500,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "gpu check: ok" in out, out[-3000:]
    assert re.search(r"device cpu  : verdict accepted, .*trained in \d+ s on \d threads? \(cpu; mlipilot.cores\); "
                     r"epoch \d+\.\d+ s", out), out[-3000:]
    assert "device auto: skipped (no CUDA device here" in out
    err = float(re.search(r"cpu: max \|Δr\| (\S+) Å", out).group(1))
    assert err < 1e-6  # torch-sim and ASE, same model and start: measured ~1e-13 Å after 10 steps
    assert "cuda: skipped" in out and "need a CUDA device" in out
