"""Dynamics checks on a bulk fcc cell of the context's element: long/large/hot Langevin runs, energy
conservation under NVE, and the radial distribution function against the reference calculator's own
trajectory. A model that crashes or explodes is a result, never an exception: the measurement says
where the run stopped and why."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.neighborlist import neighbor_list

from mlipilot.md import MDStep, MinDistance, NonFinite, Observe, TemperatureRunaway, fcc_cell, run_checked
from mlipilot.md.integrators import langevin, velocity_verlet
from mlipilot.md.pool import run_all
from mlipilot.validation.base import Measurement, ValidationContext

RDF_FRICTION = 0.02  # the rdf kind has no friction parameter: the scorecard's usual value
MELT_FRICTION = 0.05  # the diffusion check's melting run: heat fast, whatever the sampling run's friction
MIN_DISTANCE_EVERY = 10  # steps between close-contact checks (as the scorecard's bulk MD)


def _no_cell(ctx: ValidationContext, quantity: str) -> list[Measurement] | None:
    if ctx.element and ctx.lattice_a:
        return None
    return [Measurement(quantity, None, None, None, "no bulk element/lattice in this benchmark")]


def _langevin_run(atoms: Atoms, calc: Calculator, temps: tuple[float, float], p: dict[str, Any]) -> tuple[int, str]:
    """Steps completed before the first failure, and why it stopped ("ok" when it did not). The
    closest approach is looked for only below the bound (a neighbour list: O(N) for 500 atoms)."""
    run = run_checked(langevin(atoms, calc, temps, int(p["steps"]), p["timestep_fs"], p["friction"], p["seed"]),
                      [NonFinite(), MinDistance(p["min_distance_A"], MIN_DISTANCE_EVERY, track=False),
                       TemperatureRunaway(p["max_temperature_factor"])])
    return run.completed, run.reason or "ok"


def long_md(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """One Langevin run per temperature (and one ramp): value = error = fraction of steps completed."""
    if (bad := _no_cell(ctx, "completed")) is not None:
        return bad
    atoms = fcc_cell(ctx.element, ctx.lattice_a, int(params["supercell"]))
    runs = [(f"completed_{t:g}K", (float(t), float(t))) for t in params["temperatures_K"]]
    if params.get("ramp_K"):
        t0, t1 = (float(t) for t in params["ramp_K"])
        runs.append((f"completed_ramp{t0:g}-{t1:g}K", (t0, t1)))
    out = []
    results = run_all([lambda temps=temps: _langevin_run(atoms, calc, temps, params) for _, temps in runs])
    for (name, _), (good, detail) in zip(runs, results):  # the runs on the job's cores at once
        frac = good / int(params["steps"])
        out.append(Measurement(name, frac, None, frac, detail))
        ctx.progress(f"  long_md {name}: {good}/{params['steps']} steps on {len(atoms)} atoms — {detail}")
    return out


def _nve_energy_per_atom(atoms: Atoms, calc: Calculator, p: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Total energy per atom (eV) at the start and after each VelocityVerlet step; stops at the first bad step."""
    energies: list[float] = []

    def total(s: MDStep) -> None:
        energies.append(s.atoms.get_total_energy() / len(s.atoms))

    run = run_checked(velocity_verlet(atoms, calc, p["temperature_K"], int(p["steps"]), p["timestep_fs"], p["seed"]),
                      [NonFinite(), Observe(total)])
    return np.asarray(energies), run.reason or "ok"


def _drift(energies: np.ndarray, timestep_fs: float) -> float:
    t_ps = np.arange(len(energies)) * timestep_fs / 1000.0
    return abs(float(np.polyfit(t_ps, energies, 1)[0])) * 1000.0  # eV/atom/ps → meV/atom/ps


def nve_drift(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """|slope| of the total energy per atom under NVE (meV/atom/ps), the reference's alongside."""
    if (bad := _no_cell(ctx, "drift")) is not None:
        return bad
    atoms = fcc_cell(ctx.element, ctx.lattice_a, int(params["supercell"]))
    jobs = [lambda: _nve_energy_per_atom(atoms, calc, params)]
    if ctx.reference is not None:
        jobs.append(lambda: _nve_energy_per_atom(atoms, ctx.reference(), params))
    results = list(run_all(jobs))  # model and reference on two cores at once
    e_model, why = results[0]
    ref = None
    if len(results) > 1:
        e_ref, why_ref = results[1]
        ref = _drift(e_ref, params["timestep_fs"]) if why_ref == "ok" else None
    if why != "ok":
        m = Measurement("drift", None, ref, None, why)
    else:
        d = _drift(e_model, params["timestep_fs"])
        m = Measurement("drift", d, ref, d,
                        f"{params['steps']} steps on {len(atoms)} atoms at {params['temperature_K']:g} K")
    ctx.progress(f"  nve_drift: model {m.value if m.value is None else f'{m.value:.3g}'}, reference "
                 f"{ref if ref is None else f'{ref:.3g}'} meV/atom/ps — {m.detail}")
    return [m]


def _rdf(atoms: Atoms, edges: np.ndarray) -> np.ndarray:
    """g(r) from neighbour-list distances (periodic images included). ASE's get_rdf refuses rmax
    above half the cell height, which the default 3×3×3 Cu cell (10.8 Å) with rmax 6 Å is."""
    d = neighbor_list("d", atoms, float(edges[-1]))
    hist = np.histogram(d, bins=edges)[0]
    n, rho = len(atoms), len(atoms) / atoms.get_volume()
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return hist / (n * rho * shells)


def _sampled_rdf(atoms: Atoms, calc: Calculator, p: dict[str, Any], edges: np.ndarray) -> tuple[np.ndarray | None, str]:
    eq, every, temp = int(p["equilibrate_steps"]), int(p["every"]), float(p["temperature_K"])
    g, frames = np.zeros(len(edges) - 1), []

    def accumulate(s: MDStep) -> None:
        if s.step > eq and (s.step - eq) % every == 0:
            g[:] += _rdf(s.atoms, edges)
            frames.append(s.step)

    run = run_checked(langevin(atoms, calc, (temp, temp), eq + int(p["steps"]), p["timestep_fs"], RDF_FRICTION,
                               p["seed"]), [NonFinite(), Observe(accumulate)])
    if not run.ok:
        return None, str(run.reason)
    return (g / len(frames), "ok") if frames else (None, "no frames sampled")


def _first_peak(g: np.ndarray, r: np.ndarray) -> float:
    """The maximum of the first stretch where g > 1 (the nearest-neighbour shell); the global
    maximum when g never exceeds 1."""
    above = np.flatnonzero(g > 1.0)
    if not above.size:
        return float(r[int(np.argmax(g))])
    start = above[0]
    below = np.flatnonzero(g[start:] < 1.0)
    end = start + (below[0] if below.size else len(g) - start)
    return float(r[start + int(np.argmax(g[start:end]))])


def rdf_error(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """∫|g_model − g_ref| dr / ∫ g_ref dr from Langevin runs of both from the same start and seed."""
    if (bad := _no_cell(ctx, "rdf")) is not None:
        return bad
    if ctx.reference is None:
        return [Measurement("rdf", None, None, None, "no reference calculator for this benchmark")]
    atoms = fcc_cell(ctx.element, ctx.lattice_a, int(params["supercell"]))
    edges = np.linspace(0.0, float(params["rmax_A"]), int(params["nbins"]) + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    (g_ref, why_ref), (g_mod, why) = run_all([lambda: _sampled_rdf(atoms, ctx.reference(), params, edges),
                                               lambda: _sampled_rdf(atoms, calc, params, edges)])
    peak_ref = _first_peak(g_ref, r) if g_ref is not None else None
    if g_mod is None or g_ref is None:
        m = Measurement("rdf", None, peak_ref, None, why if g_mod is None else f"reference MD failed: {why_ref}")
    else:
        err = float(np.abs(g_mod - g_ref).sum() / g_ref.sum())  # uniform bins: dr cancels
        peak = _first_peak(g_mod, r)
        m = Measurement("rdf", peak, peak_ref, err, f"first peak {peak:.2f} Å vs reference {peak_ref:.2f} Å "
                        f"({len(atoms)} atoms, {params['temperature_K']:g} K)")
    ctx.progress(f"  rdf: error {m.error if m.error is None else f'{m.error:.3f}'} — {m.detail}")
    return [m]


def _diffusion_coefficient(atoms: Atoms, calc: Calculator, p: dict[str, Any]) -> tuple[float | None, str]:
    """D (Å²/ps) of the liquid: melt at `melt_K`, then at `temperature_K`
    MSD(t) (centre-of-mass drift removed) sampled every `every` steps; D = slope of its second half / 6."""
    dt, friction, seed = float(p["timestep_fs"]), float(p["friction"]), int(p["seed"])
    melted: list[Atoms] = []

    def last(s: MDStep) -> None:
        if s.step == s.total:
            melted.append(s.atoms.copy())

    checks = [NonFinite(), MinDistance(p["min_distance_A"], MIN_DISTANCE_EVERY, track=False)]
    # melted at a strong thermostat (the perfect lattice starts at half its kinetic temperature)
    run = run_checked(langevin(atoms, calc, (float(p["melt_K"]),) * 2, int(p["melt_steps"]), dt, MELT_FRICTION, seed),
                      [*checks, Observe(last)])
    if not run.ok or not melted:
        return None, f"melting at {p['melt_K']:g} K: {run.reason}"
    every = int(p["every"])
    positions: list[np.ndarray] = []

    def sample(s: MDStep) -> None:
        if s.step % every == 0:
            r = s.atoms.get_positions()  # ASE's integrators do not wrap: unwrapped trajectories
            positions.append(r - r.mean(axis=0))

    run = run_checked(langevin(melted[0], calc, (float(p["temperature_K"]),) * 2, int(p["steps"]), dt, friction,
                               seed + 1), [*checks, Observe(sample)])
    if not run.ok or len(positions) < 4:
        return None, f"liquid at {p['temperature_K']:g} K: {run.reason or 'too few samples'}"
    x = np.asarray(positions)
    msd = ((x - x[0]) ** 2).sum(axis=2).mean(axis=1)
    t_ps = np.arange(len(msd)) * every * dt / 1000.0
    half = len(msd) // 2
    slope = np.polyfit(t_ps[half:], msd[half:], 1)[0]
    return float(slope / 6.0), "ok"


def diffusion(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """The liquid's self-diffusion coefficient against the reference calculator's own trajectory (same
    start, seed and thermostat: the friction slows both alike), relative error in %."""
    if (bad := _no_cell(ctx, "D")) is not None:
        return bad
    if ctx.reference is None:
        return [Measurement("D", None, None, None, "no reference calculator for this benchmark")]
    atoms = fcc_cell(ctx.element, ctx.lattice_a, int(params["supercell"]))
    # every k-th site emptied: the liquid's lower density, and a perfect lattice superheats for picoseconds
    del atoms[list(range(0, len(atoms), max(1, len(atoms) // max(1, int(params["vacancies"])))))[:int(params["vacancies"])]]
    (d_ref, why_ref), (d_mod, why) = run_all([lambda: _diffusion_coefficient(atoms, ctx.reference(), params),
                                               lambda: _diffusion_coefficient(atoms, calc, params)])
    where = f"{len(atoms)} atoms, {params['temperature_K']:g} K, {params['steps']} steps"
    if d_mod is None or d_ref is None or d_ref <= 0:
        m = Measurement("D", d_mod, d_ref, None, why if d_mod is None else f"reference: {why_ref} (D {d_ref})")
    else:
        m = Measurement("D", d_mod, d_ref, 100 * abs(d_mod - d_ref) / d_ref,
                        f"D {d_mod:.3g} vs reference {d_ref:.3g} Å²/ps ({where})")
    ctx.progress(f"  diffusion: error {m.error if m.error is None else f'{m.error:.1f} %'} — {m.detail}")
    return [m]
