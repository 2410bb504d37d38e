"""Inference throughput: MD steps per CPU-second of the single-threaded scorer (what scorecards gate:
it does not move with the neighbours' load) and per wall-second (information); medians of repeats,
after warm-up."""

from __future__ import annotations

import statistics
import time

from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.scorecard.md_driver import langevin
from mlipilot.scorecard.spec import ScorecardSpec


def throughput_metrics(calc: Calculator, spec: ScorecardSpec, atoms: Atoms) -> dict[str, float]:
    """Time MD on `atoms` (the stability kind's throughput structure)."""
    tp = spec.throughput
    for _ in langevin(atoms, calc, (300.0, 300.0), tp.warmup_steps, tp.timestep_fs, 0.02, 0):
        pass
    rates, cpu = [], []
    for rep in range(tp.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in langevin(atoms, calc, (300.0, 300.0), tp.steps, tp.timestep_fs, 0.02, rep + 1):
            pass
        wall, used = time.perf_counter() - w0, time.process_time() - c0
        rates.append(tp.steps / wall)
        cpu.append(used / tp.steps)
    sps = statistics.median(rates)
    return {
        "steps_per_second": sps,
        "ns_per_day": sps * tp.timestep_fs * 86400 / 1e6,
        "cpu_seconds_per_step": statistics.median(cpu),
        "steps_per_cpu_second": 1.0 / max(statistics.median(cpu), 1e-9),
        "us_per_atom_step": statistics.median(cpu) / len(atoms) * 1e6,
        "throughput_atoms": float(len(atoms)),
    }
