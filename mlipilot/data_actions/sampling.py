"""Candidate generation from training frames: MD (Langevin, Berendsen NPT, heating ramps) driven by
the incumbent model or the reference, early-stopped on the scorecard's own guards, or model-free
perturbations (rattle, strain, vacancy, compression). Pure functions over ASE objects; the job that
runs them lives in mlipilot.data_actions.jobs."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.data_actions.records import DataRefusal, Method

T_RANGE_K = (1.0, 5000.0)  # temperatures outside this are refused before any job
TIMESTEP_FS_MAX = 10.0  # an MD timestep above this (fs) is refused before any job
SEED_MAX = 2**31 - 1
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


def check_seed(seed) -> int:
    """A seed is a whole number 0..2**31-1 (not a bool, not "abc", not 1e400 or NaN)."""
    if isinstance(seed, float) and math.isfinite(seed) and seed.is_integer():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise DataRefusal(f"seed {_shown(seed)}: give a whole number from 0 to {SEED_MAX}")
    return seed


def check_timestep(timestep_fs) -> float | None:
    """None (the scorecard's MD timestep) or a finite timestep in (0, TIMESTEP_FS_MAX] fs."""
    if timestep_fs is None:
        return None
    if isinstance(timestep_fs, bool) or not isinstance(timestep_fs, (int, float)) \
            or not 0 < timestep_fs <= TIMESTEP_FS_MAX:  # NaN fails the comparison too
        raise DataRefusal(f"timestep_fs {_shown(timestep_fs)}: give femtoseconds in (0, {TIMESTEP_FS_MAX:g}], "
                          "or leave it out for the scorecard's MD timestep")
    return float(timestep_fs)


def _shown(value) -> str:
    try:
        return repr(value)[:60]
    except ValueError:  # an int with more digits than Python turns into text
        return "(an integer with thousands of digits)"


def non_finite(atoms: Atoms, energy: float | None = None, forces: np.ndarray | None = None) -> str | None:
    """What of a candidate frame is not finite (positions, cell, energy, forces), else None: such a
    frame never enters a pool."""
    bad = [what for what, x in (("positions", atoms.positions), ("cell", atoms.cell.array),
                                ("energy", energy), ("forces", forces))
           if x is not None and not np.isfinite(np.asarray(x, dtype=float)).all()]
    return f"non-finite {'/'.join(bad)}" if bad else None


class FiniteState:
    """An MD step check beside mlipilot.md's NonFinite (energy, forces): positions and cell finite too
    (a NaN timestep moves every atom to NaN while a cutoff potential still returns finite numbers)."""
    name = "finite_state"
    every = 1
    at_end = False

    def check(self, s) -> str | None:
        problem = non_finite(s.atoms, s.energy, s.forces)
        return f"{problem} at step {s.step}" if problem else None

    def figures(self) -> dict[str, float]:
        return {}


def drop_non_finite(frames: list[Atoms], stats: list[dict], stops: list[dict]
                    ) -> tuple[list[Atoms], list[dict], list[dict]]:
    """The last guard before a pool is written: a frame with any non-finite position, cell or force
    (its stats' max_f) is dropped and counted as an early stop with the reason."""
    keep_f, keep_s, stops = [], [], list(stops)
    for a, st in zip(frames, stats):
        max_f = st.get("max_f")
        problem = non_finite(a) or (None if max_f is None or math.isfinite(max_f) else "non-finite forces")
        if problem:
            stops.append({"structure": st.get("start", config_type(a)), "temperature": st.get("temperature"),
                          "step": st.get("step", 0), "reason": f"{problem}: frame dropped"})
        else:
            keep_f.append(a)
            keep_s.append(st)
    return keep_f, keep_s, stops


def min_distance(atoms: Atoms) -> float:
    if len(atoms) < 2:
        return math.inf
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def _protocol(atoms: Atoms, method: Method, temps: tuple[float, float], steps: int, timestep_fs: float,
              seed: int):
    """The run's integrator settings for mlipilot.md (NPT only for periodic cells)."""
    from mlipilot.md import Ensemble, Protocol

    npt = method == Method.NPT and atoms.pbc.all()
    return Protocol(temps, steps, timestep_fs, seed, Ensemble.NPT if npt else Ensemble.NVT, friction=0.01)


def _stats(a: Atoms, start: str, temperature: float | None, step: int, forces: np.ndarray | None) -> dict:
    return {"config_type": config_type(a), "start": start, "temperature": temperature, "step": step,
            "n_atoms": len(a), "d_min": round(min_distance(a), 4),
            "max_f": None if forces is None else round(float(np.linalg.norm(forces, axis=1).max()), 4)}


def run_md(starts: list[Atoms], calc: Calculator, method: Method, temps: list[tuple[float, float]], n_frames: int,
           steps: int, timestep_fs: float, guards: Guards, seed: int) -> tuple[list[Atoms], list[dict], list[dict]]:
    """MD from each start at each temperature; frames kept every `steps / per_run` steps until n_frames.
    A run stops at the first guard it trips (non-finite, atoms too close, temperature runaway): the
    frames before it stay, the stop is reported."""
    if isinstance(timestep_fs, bool) or not isinstance(timestep_fs, (int, float)) \
            or not 0 < timestep_fs <= TIMESTEP_FS_MAX:  # refused before the job; never integrated
        return [], [], [{"structure": "all", "temperature": None, "step": 0,
                         "reason": f"timestep {timestep_fs!r} fs is not in (0, {TIMESTEP_FS_MAX:g}]: no MD ran"}]
    runs = [(i, s, t) for i, s in enumerate(starts) for t in temps]
    per_run = max(1, math.ceil(n_frames / len(runs)))
    every = max(1, steps // per_run)
    from mlipilot.md import MinDistance, NonFinite, Observe, TemperatureRunaway, integrate, run_checked

    frames, stats, stops = [], [], []
    for k, (i, start, t) in enumerate(runs):
        label = f"{config_type(start)}#{i}"
        kept = []

        def keep(s, start=start, label=label, kept=kept) -> None:
            if len(kept) < per_run and len(frames) < n_frames:
                a = s.atoms.copy()
                a.calc = None
                a.info = {"config_type": config_type(start)}
                frames.append(a)
                stats.append(_stats(a, label, round(float(s.temperature_K), 1), s.step, s.forces))
                kept.append(s.step)

        # the scorecard's guards, then the sampler: a frame is kept only from a step that passed them
        checks = [NonFinite(), FiniteState(), MinDistance(guards.min_distance_A, track=False),
                  TemperatureRunaway(guards.max_temperature_factor), Observe(keep, every)]
        run = run_checked(integrate(start, calc, _protocol(start, method, t, steps, timestep_fs, seed + k)), checks)
        if not run.ok:
            stops.append({"structure": label, "temperature": t[1] if t[0] == t[1] else list(t),
                          "step": run.steps, "reason": (run.reason or "")[:200]})
    return frames, stats, stops


def perturb(starts: list[Atoms], method: Method, n_frames: int, amplitude: float | None, seed: int,
            calc: Calculator | None = None) -> tuple[list[Atoms], list[dict], list[dict]]:
    """Model-free candidates, round-robin over the starts: rattle (Gaussian, amplitude Å), strain
    (random symmetric, ±amplitude), vacancy (one atom removed), compression (isotropic scale 1 ± amplitude).
    A candidate with a non-finite position, cell, or (with `calc`) energy or force is dropped and
    reported as an early stop."""
    rng = np.random.default_rng(seed)
    frames, stats, stops = [], [], []
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
        forces = energy = None
        if calc is not None:
            try:
                b = a.copy()
                b.calc = calc
                forces = b.get_forces()
                energy = b.get_potential_energy()
            except Exception:
                forces = energy = None
        label = f"{config_type(starts[i])}#{i}"
        problem = non_finite(a, energy, forces)
        if problem:
            stops.append({"structure": label, "temperature": None, "step": 0,
                          "reason": f"{problem} after {method} (candidate {k}): frame dropped"})
            continue
        frames.append(a)
        stats.append(_stats(a, label, None, 0, forces))
    return frames, stats, stops


