"""Candidate generation from training frames: MD (Langevin, Berendsen NPT, heating ramps) driven by
the incumbent model or the reference, early-stopped on the scorecard's own guards, or model-free
perturbations (rattle, strain, vacancy, compression). Pure functions over ASE objects; the job that
runs them lives in mlipilot.data_actions.jobs."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.data_actions.records import DataRefusal, Method

T_RANGE_K = (1.0, 5000.0)  # temperatures outside this are refused before any job
GLOB_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-*?[]!.+=,")


@dataclass(frozen=True)
class Guards:
    """The scorecard's MD guards (stability.min_distance_A, max_temperature_factor)."""
    min_distance_A: float = 0.5
    max_temperature_factor: float = 3.0


def config_type(atoms: Atoms) -> str:
    return str(atoms.info.get("config_type", "default"))


def check_source(source: str, frames: list[Atoms], where: str) -> list[Atoms]:
    """The training frames whose config_type matches the glob; refuses paths and globs matching nothing."""
    if not source or not set(source) <= GLOB_CHARS or "/" in source or ".." in source:
        raise DataRefusal(f"source {source!r}: a config_type glob such as 'bulk*' (no paths) — it chooses among "
                          f"the training frames ({where})")
    picked = [a for a in frames if fnmatch.fnmatchcase(config_type(a), source)]
    if not picked:
        known = sorted({config_type(a) for a in frames})
        raise DataRefusal(f"source {source!r} matches no training frame's config_type — use one of "
                          f"{', '.join(known[:12])} (or a glob over them)")
    return picked


def check_temperatures(method: Method, temperatures: list) -> list:
    if not method.is_md:
        return []
    if not temperatures:
        raise DataRefusal(f"method {method} needs temperatures, e.g. temperatures=[1500, 2500]"
                          + (" (ramp: [[300, 3000]])" if method == Method.RAMP else ""))
    out = []
    for t in temperatures:
        pair = t if isinstance(t, (list, tuple)) else (t, t)
        if method == Method.RAMP and not isinstance(t, (list, tuple)):
            raise DataRefusal(f"ramp temperatures are pairs (start, end), e.g. [[300, 3000]] — got {t!r}")
        if len(pair) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair):
            raise DataRefusal(f"temperature {t!r}: give kelvin numbers, e.g. [1500, 2500]")
        if not all(T_RANGE_K[0] <= x <= T_RANGE_K[1] for x in pair):
            raise DataRefusal(f"temperature {t!r} K out of range — use {T_RANGE_K[0]:g} to {T_RANGE_K[1]:g} K")
        out.append((float(pair[0]), float(pair[1])))
    return out


def min_distance(atoms: Atoms) -> float:
    if len(atoms) < 2:
        return math.inf
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def _md(atoms: Atoms, calc: Calculator, method: Method, temps: tuple[float, float], steps: int,
        timestep_fs: float, seed: int) -> Iterator:
    """The MD backend (ASE today, through the scorecard's driver; one place to switch to mlipilot.md)."""
    from mlipilot.scorecard import md_driver

    if method == Method.NPT and atoms.pbc.all():
        return md_driver.npt_berendsen(atoms, calc, temps, steps, timestep_fs, 0.0, 100.0, 500.0, 0.01, seed)
    return md_driver.langevin(atoms, calc, temps, steps, timestep_fs, 0.01, seed)


def _stats(a: Atoms, start: str, temperature: float | None, step: int, forces: np.ndarray | None) -> dict:
    return {"config_type": config_type(a), "start": start, "temperature": temperature, "step": step,
            "n_atoms": len(a), "d_min": round(min_distance(a), 4),
            "max_f": None if forces is None else round(float(np.linalg.norm(forces, axis=1).max()), 4)}


def run_md(starts: list[Atoms], calc: Calculator, method: Method, temps: list[tuple[float, float]], n_frames: int,
           steps: int, timestep_fs: float, guards: Guards, seed: int) -> tuple[list[Atoms], list[dict], list[dict]]:
    """MD from each start at each temperature; frames kept every `steps / per_run` steps until n_frames.
    A run stops at the first guard it trips (non-finite, atoms too close, temperature runaway): the
    frames before it stay, the stop is reported."""
    runs = [(i, s, t) for i, s in enumerate(starts) for t in temps]
    per_run = max(1, math.ceil(n_frames / len(runs)))
    every = max(1, steps // per_run)
    frames, stats, stops = [], [], []
    for k, (i, start, t) in enumerate(runs):
        label = f"{config_type(start)}#{i}"
        kept = 0
        try:
            for s in _md(start, calc, method, t, steps, timestep_fs, seed + k):
                reason = None
                if not (np.isfinite(s.energy) and np.isfinite(s.forces).all()):
                    reason = "non-finite energy/forces"
                elif s.step % 10 == 0 and (d := min_distance(s.atoms)) < guards.min_distance_A:
                    reason = f"atoms {d:.2f} Å apart (bound {guards.min_distance_A} Å)"
                elif s.target_K > 0 and s.temperature_K / s.target_K > guards.max_temperature_factor:
                    reason = f"temperature runaway {s.temperature_K:.0f} K vs {s.target_K:.0f} K"
                if reason:
                    stops.append({"structure": label, "temperature": t[1] if t[0] == t[1] else list(t),
                                  "step": s.step, "reason": reason})
                    break
                if s.step % every == 0 and kept < per_run and len(frames) < n_frames:
                    a = s.atoms.copy()
                    a.calc = None
                    a.info = {"config_type": config_type(start)}
                    frames.append(a)
                    stats.append(_stats(a, label, round(float(s.temperature_K), 1), s.step, s.forces))
                    kept += 1
        except Exception as e:  # a model that crashes the integrator: an early stop, not a harness error
            stops.append({"structure": label, "temperature": t[1], "step": None, "reason": f"{type(e).__name__}: {e}"[:200]})
    return frames, stats, stops


def perturb(starts: list[Atoms], method: Method, n_frames: int, amplitude: float | None, seed: int,
            calc: Calculator | None = None) -> tuple[list[Atoms], list[dict], list[dict]]:
    """Model-free candidates, round-robin over the starts: rattle (Gaussian, amplitude Å), strain
    (random symmetric, ±amplitude), vacancy (one atom removed), compression (isotropic scale 1 ± amplitude)."""
    rng = np.random.default_rng(seed)
    frames, stats = [], []
    defaults = {Method.RATTLE: 0.05, Method.STRAIN: 0.03, Method.VACANCY: 0.0, Method.COMPRESSION: 0.08}
    amp = defaults[method] if amplitude is None else float(amplitude)
    for k in range(n_frames):
        i = k % len(starts)
        a = starts[i].copy()
        a.calc = None
        a.info = {"config_type": config_type(starts[i])}
        if method == Method.RATTLE:
            a.positions += rng.normal(0.0, amp, a.positions.shape)
        elif method == Method.STRAIN:
            e = rng.uniform(-amp, amp, (3, 3))
            a.set_cell(a.cell.array @ (np.eye(3) + (e + e.T) / 2), scale_atoms=True)
        elif method == Method.VACANCY:
            del a[int(rng.integers(len(a)))]
            a.positions += rng.normal(0.0, 0.02, a.positions.shape)  # distinct frames from the same start
        elif method == Method.COMPRESSION:
            s = 1.0 + rng.uniform(-amp, amp)
            a.set_cell(a.cell.array * s, scale_atoms=True)
        forces = None
        if calc is not None:
            try:
                b = a.copy()
                b.calc = calc
                forces = b.get_forces()
            except Exception:
                forces = None
        frames.append(a)
        stats.append(_stats(a, f"{config_type(starts[i])}#{i}", None, 0, forces))
    return frames, stats, []


