"""Inference throughput: MD steps per CPU-second of the single-threaded scorer (what scorecards gate:
it does not move with the neighbours' load) and per wall-second (information).

The figure comes from the stability MD run on the kind's throughput structure (its integrator time,
checks excluded, after warm-up) when that run got far enough; else from a separate timed run (medians of
repeats, after warm-up). `throughput_ratio` divides it by the rate of a fixed reference MACE (the shipped
baseline's architecture, fixed seed) measured in the same job on the same structure: a CPU-portable bound.
"""

from __future__ import annotations

import statistics
import time

from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.md import MDRun
from mlipilot.md.integrators import langevin
from mlipilot.scorecard.spec import ScorecardSpec

# The reference model of `throughput_ratio`: the shipped Cu/qm7 baselines' MACE (32 channels, scalars
# only, max_ell 2, correlation 2, two interactions) at r_max 5 Å, float32, random weights from seed 0
# (speed does not depend on the weights). Fixed here, harness-owned: the same on every machine.
REFERENCE_MACE = {"num_channels": 32, "max_ell": 2, "correlation": 2, "num_interactions": 2, "r_max": 5.0,
                  "dtype": "float32", "seed": 0}


def _figures(cpu_per_step: float, wall_per_step: float, atoms: int, timestep_fs: float) -> dict[str, float]:
    sps = 1.0 / max(wall_per_step, 1e-9)
    return {
        "steps_per_second": sps,
        "ns_per_day": sps * timestep_fs * 86400 / 1e6,
        "cpu_seconds_per_step": cpu_per_step,
        "steps_per_cpu_second": 1.0 / max(cpu_per_step, 1e-9),
        "us_per_atom_step": cpu_per_step / atoms * 1e6,
        "throughput_atoms": float(atoms),
    }


def from_run(run: MDRun, atoms: int, timestep_fs: float, min_steps: int) -> dict[str, float] | None:
    """The throughput figures of a checked MD run's integrator timing; None when fewer than
    `min_steps` steps were timed (a run that stopped early measures too little)."""
    if run.figures.get("timed_steps", 0) < min_steps:
        return None
    return _figures(run.figures["cpu_s_per_step"], run.figures["wall_s_per_step"], atoms, timestep_fs)


def throughput_metrics(calc: Calculator, spec: ScorecardSpec, atoms: Atoms) -> dict[str, float]:
    """Time MD on `atoms` (the stability kind's throughput structure) in a run of its own."""
    tp = spec.throughput
    for _ in langevin(atoms, calc, (300.0, 300.0), tp.warmup_steps, tp.timestep_fs, 0.02, 0):
        pass
    walls, cpu = [], []
    for rep in range(tp.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in langevin(atoms, calc, (300.0, 300.0), tp.steps, tp.timestep_fs, 0.02, rep + 1):
            pass
        walls.append((time.perf_counter() - w0) / tp.steps)
        cpu.append((time.process_time() - c0) / tp.steps)
    return _figures(statistics.median(cpu), statistics.median(walls), len(atoms), tp.timestep_fs)


def reference_calculator(atomic_numbers: list[int]) -> Calculator:
    """REFERENCE_MACE over the given elements (built, never loaded from a file)."""
    import mace  # noqa: F401  -- before e3nn
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    from mlipilot.scorecard.calculator import ScoringCalculator

    r = REFERENCE_MACE
    torch.manual_seed(r["seed"])
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    zs = sorted(set(int(z) for z in atomic_numbers))
    model = modules.ScaleShiftMACE(
        r_max=r["r_max"], num_bessel=8, num_polynomial_cutoff=5, max_ell=r["max_ell"], interaction_cls=block,
        interaction_cls_first=block, num_interactions=r["num_interactions"], num_elements=len(zs),
        hidden_irreps=o3.Irreps(f"{r['num_channels']}x0e"), MLP_irreps=o3.Irreps("16x0e"),
        gate=torch.nn.functional.silu, atomic_energies=np.zeros(len(zs)), avg_num_neighbors=12.0,
        atomic_numbers=zs, correlation=r["correlation"], radial_type="bessel", atomic_inter_scale=1.0,
        atomic_inter_shift=0.0)
    return ScoringCalculator(models=[model], device="cpu", default_dtype=r["dtype"])


def reference_rate(spec: ScorecardSpec, atoms: Atoms) -> float:
    """Steps per CPU-second of REFERENCE_MACE on `atoms`, timed like the separate throughput run."""
    return throughput_metrics(reference_calculator(list(atoms.numbers)), spec, atoms)["steps_per_cpu_second"]
