"""The GPU check (issue 37), ready for the day a CUDA device is lent; on a CPU-only machine it runs what
it can and says what it skipped.

1. A real trial of the Cu baseline (cu_emt, local executor, the sandbox init probes) with `device: cpu`,
   then, with CUDA, the same trial with `device: auto` (the sandbox shows the GPU to training only): the
   epoch time of each, from mace-torch's log, and the device the job says it trained on.
2. torch-sim's replica engine (mlipilot.batched_md) against ASE's Velocity Verlet for the same model,
   start and velocities (10 steps, float64): the largest position difference, on the CPU and on CUDA.
3. Replica-steps per second for 1, 8 and 64 replicas of 108 Cu atoms, and ns/day for a ~10,000-atom cell
   (CUDA only: on one CPU thread a batch runs no faster than the replicas in turn, issue 23).

    python benchmarks/gpu_check.py [--size small] [--keep DIR]

Exits 1 on any disagreement (a trial that did not train where asked, a trajectory off by more than
1e-6 Å), 0 otherwise. Budget: under 8 minutes on one GPU with --size small.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import mace  # noqa: E402,F401  (before e3nn)

from mlipilot import batched_md  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402

TOLERANCE_A = 1e-6
PROBLEMS: list[str] = []


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def epoch_seconds(log: Path) -> float | None:
    """Median seconds between mace-torch's epoch lines."""
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
              for m in re.finditer(r"^(\S+ \S+) INFO: Epoch \d+:", log.read_text(errors="replace"), re.M)]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    return float(np.median(gaps)) if gaps else None


def trial(run: Path, device: str) -> Path:
    cfg = dataclasses.replace(load_run_config(run), device=device)
    with open(run / "train" / "config.yaml", "a") as f:  # a trial of an unchanged workspace would be refused
        f.write(f"# gpu check: device {device}\n")
    lines: list[str] = []
    record = TrialRunner(cfg, progress=lines.append).run(f"gpu check: device {device}", agent="benchmark-script")
    said = next((x.strip() for x in lines if x.strip().startswith("trained in")), "no training line")
    epoch = epoch_seconds(Path(record.trial_dir) / "train.log")
    print(f"  device {device:5}: verdict {record.verdict}, composite {record.composite}, {said}; "
          f"epoch {epoch if epoch is None else f'{epoch:.2f}'} s")
    wanted = "cuda" if device in ("auto", "cuda") and cuda() else "cpu"
    if f"({wanted};" not in said:
        PROBLEMS.append(f"device {device}: expected training on {wanted}, the job said: {said}")
    return Path(record.trial_dir)


def replica_agreement(module, device: str) -> float:
    from ase import units
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
    from mace.calculators import MACECalculator

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    atoms.rattle(0.05, seed=1)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(1))
    ref = atoms.copy()
    ref.calc = MACECalculator(models=[module.to("cpu")], device="cpu", default_dtype="float64")
    dyn = VelocityVerlet(ref, timestep=2.0 * units.fs)
    dyn.run(10)
    (traj,) = batched_md.verlet(module.to(device), [atoms], [atoms.get_velocities()], 2.0, 10, device=device)
    d = traj[-1] - ref.get_positions()
    frac = d @ np.linalg.inv(atoms.cell.array)
    return float(np.abs((frac - np.round(frac)) @ atoms.cell.array).max())


def replica_rate(module, device: str, replicas: int, repeat: int = 3, steps: int = 20) -> float:
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    frames = []
    for i in range(replicas):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
        a.rattle(0.02, seed=i)
        MaxwellBoltzmannDistribution(a, temperature_K=300, rng=np.random.default_rng(i))
        frames.append(a)
    batched_md.verlet(module, frames[:1], [frames[0].get_velocities()], 2.0, 2, device=device, dtype="float32")
    t0 = time.perf_counter()
    batched_md.verlet(module, frames, [f.get_velocities() for f in frames], 2.0, steps, device=device, dtype="float32")
    return replicas * steps / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="cu_emt data size (small: 2 minutes of CPU training)")
    ap.add_argument("--keep", type=Path, help="make the run here (kept) instead of a temporary folder")
    a = ap.parse_args()
    import torch

    has_cuda = cuda()
    print(f"torch {torch.__version__}, CUDA {'yes: ' + torch.cuda.get_device_name(0) if has_cuda else 'no'}, "
          f"torch-sim {'installed' if batched_md.available() else 'not installed'}, "
          f"{len(os.sched_getaffinity(0))} cores")
    base = a.keep or Path(tempfile.mkdtemp(prefix="mlipilot-gpu-check-"))
    run = init_run("cu_emt", base / "cu", executor="local", size=a.size, data_seed=0, progress=lambda s: None)
    print("1. the Cu baseline through a real trial")
    cpu_dir = trial(run, "cpu")
    if has_cuda:
        trial(run, "auto")
    else:
        print("  device auto: skipped (no CUDA device here; `auto` trains on the CPU, as above)")
    print("2. torch-sim replica engine vs ASE (10 Velocity Verlet steps, float64, 108 atoms)")
    if not batched_md.available():
        print("  skipped: torch-sim-atomistic is not installed (pip install 'mlipilot[gpu]')")
        return report()
    from mlipilot.model_export import rebuild

    module, _ = rebuild(cpu_dir / "model")
    module = module.double()
    for device in ("cpu", "cuda") if has_cuda else ("cpu",):
        err = replica_agreement(module, device)
        print(f"  {device}: max |Δr| {err:.2e} Å (tolerance {TOLERANCE_A:g})")
        if not err < TOLERANCE_A:
            PROBLEMS.append(f"torch-sim on {device} departs from ASE by {err:.2e} Å")
    if not has_cuda:
        print("  cuda: skipped (no CUDA device)")
    print("3. replica throughput (float32)")
    if not has_cuda:
        print("  skipped: 1/8/64 replicas of 108 atoms and a ~10,000-atom cell need a CUDA device")
        return report()
    module = module.float()
    for r in (1, 8, 64):
        print(f"  {r:3} x 108 atoms: {replica_rate(module, 'cuda', r):10.1f} replica-steps/s")
    big = replica_rate(module, "cuda", 1, repeat=14, steps=10)  # 14³ x 4 = 10,976 atoms
    print(f"  1 x 10976 atoms: {big:.2f} steps/s = {big * 2.0 * 86400 / 1e6:.2f} ns/day at 2 fs")
    return report()


def report() -> int:
    if PROBLEMS:
        print("GPU CHECK FAILED:\n  " + "\n  ".join(PROBLEMS))
        return 1
    print("gpu check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
