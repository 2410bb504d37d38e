"""Validation checks on the benchmark's own structures (any elements, periodic cells), for a user's
system that is not one fcc element: the equation of state of each chosen `config_type`'s structure,
long MD on the benchmark's md_structures through the scorecard's own stability code, and the radial
distribution function (and, under NPT, the density) against the reference calculator's own MD.

Structures are picked as the scorecard picks them (`config_types` globs, first frame of each). A model
that raises or predicts non-finite numbers gives Measurements with value None: a result, not a crash."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from mlipilot.scorecard.spec import Ensemble, MDRun, StructurePick
from mlipilot.md import MDStep, NonFinite, Observe, run_checked
from mlipilot.md.integrators import integrate
from mlipilot.md.pool import run_all
from mlipilot.scorecard.stability_kinds import STABILITY_KINDS, protocol
from mlipilot.scorecard.structure_stability import is_periodic, pick_structures
from mlipilot.validation.base import Measurement, ValidationContext
from mlipilot.properties import energy as _energy
from mlipilot.properties import eos_fit
from mlipilot.validation.bulk_properties import _why
from mlipilot.validation.dynamics import _first_peak, _rdf


def _picked(frames: list[Atoms], p: dict[str, Any], min_atoms: int = 0) -> list[tuple[str, Atoms]]:
    """(label, structure) for the periodic structures the globs choose; label = config_type (+ index if repeated)."""
    pick = StructurePick(tuple(p["config_types"]), int(p["per_config_type"]), int(p["max_structures"]), min_atoms)
    out, seen = [], {}
    for a in pick_structures(frames, pick):
        if is_periodic(a):
            ct = a.info["config_type"]
            seen[ct] = seen.get(ct, 0) + 1
            out.append((ct if seen[ct] == 1 else f"{ct}{seen[ct]}", a))
    return out


def _none(ctx: ValidationContext, what: str, needs_reference: bool = True) -> list[Measurement] | None:
    if needs_reference and ctx.reference is None:
        return [Measurement(what, None, None, None, "no reference calculator (validation spec or scorecard 'reference')")]
    return None


def _eos(calc: Calculator, atoms: Atoms) -> tuple[float, float]:
    """(V0 per atom in Å³, B in GPa) of E(V) under isotropic scaling of the frame (positions unrelaxed)."""
    v = atoms.get_volume()

    def energy(a: float) -> float:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell[:] * (a / v ** (1 / 3)), scale_atoms=True)
        return _energy(scaled, calc)

    a, b = eos_fit(energy, v ** (1 / 3))
    return a ** 3 / len(atoms), b


def _eos_check(calc: Calculator, ctx: ValidationContext, p: dict[str, Any], which: int, name: str,
               unit: str) -> list[Measurement]:
    if (bad := _none(ctx, name)) is not None:
        return bad
    picked = _picked(ctx.holdout, p)
    if not picked:
        return [Measurement(name, None, None, None, f"no periodic holdout structure matches {p['config_types']}")]
    out = []
    for label, atoms in picked:
        q = f"{name}_{label}"
        try:
            r = _eos(ctx.reference(), atoms)[which]
        except Exception as e:
            out.append(Measurement(q, None, None, None, f"reference failed: {_why(e)}"))
            continue
        try:
            v = _eos(calc, atoms)[which]
            if not math.isfinite(v):
                raise ValueError("non-finite")
        except Exception as e:
            out.append(Measurement(q, None, r, None, f"model failed: {_why(e)}"))
            continue
        out.append(Measurement(q, v, r, 100 * abs(v - r) / abs(r),
                               f"{v:.4g} {unit} vs reference {r:.4g} {unit}; {atoms.get_chemical_formula()}, "
                               "isotropic scaling of the holdout frame"))
        ctx.progress(f"  {q}: {v:.4g} {unit} (reference {r:.4g}) on {atoms.get_chemical_formula()}")
    return out


def structure_volume(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    return _eos_check(calc, ctx, params, 0, "V0", "Å³/atom")


def structure_bulk_modulus(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    return _eos_check(calc, ctx, params, 1, "B", "GPa")


def _run(p: dict[str, Any], name: str) -> MDRun:
    t = p["temperature_K"]
    temps = (float(t[0]), float(t[1])) if isinstance(t, (list, tuple)) else (float(t), float(t))
    return MDRun(name, 0, temps, int(p["steps"]), float(p["timestep_fs"]), float(p["friction"]), int(p["seed"]),
                 Ensemble(p["ensemble"]), float(p["pressure_GPa"]))


def structure_md(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """The scorecard's own MD checks (contacts, runaway, NPT volume), longer and on larger cells, from the
    benchmark's md_structures (or holdout picks): value = error = fraction of the steps completed."""
    if ctx.scorecard is None:
        return [Measurement("completed", None, None, None, "no scorecard")]
    run = _run(params, "md")
    st = dataclasses.replace(ctx.scorecard.stability, runs=(run,), reference=None, structures=StructurePick(
        tuple(params["config_types"]), int(params["per_config_type"]), int(params["max_structures"]),
        int(params["min_atoms"])))
    card = dataclasses.replace(ctx.scorecard, stability=st)
    _, runs, _ = STABILITY_KINDS["structures"].run(calc, card, ctx.md_frames, ctx.progress, cores=None)
    out = []
    for name, r in runs.items():
        if r.extra.get("skipped"):
            continue
        frac = 1.0 if r.ok else r.completed / run.steps
        out.append(Measurement(f"completed_{name.removeprefix('md_')}", frac, None, frac, r.reason or "ok"))
    return out or [Measurement("completed", None, None, None, f"no MD structure matches {params['config_types']}")]


def _sample(atoms: Atoms, calc: Calculator, run: MDRun, equilibrate: int, every: int,
            edges: np.ndarray) -> tuple[np.ndarray | None, float | None, str]:
    """Mean g(r) and density (g/cm³) over the frames after `equilibrate` steps, every `every` steps."""
    g, rho = np.zeros(len(edges) - 1), []

    def accumulate(s: MDStep) -> None:
        if s.step > equilibrate and (s.step - equilibrate) % every == 0:
            g[:] += _rdf(s.atoms, edges)
            rho.append(s.atoms.get_masses().sum() / s.atoms.get_volume() * (units._amu * 1e27))  # amu/Å³ → g/cm³

    md = run_checked(integrate(atoms, calc, protocol(run)), [NonFinite(), Observe(accumulate)])
    if not md.ok:
        return None, None, str(md.reason)
    return (g / len(rho), sum(rho) / len(rho), "ok") if rho else (None, None, "no frames sampled")


def structure_rdf(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """∫|g_model − g_ref| dr / ∫ g_ref dr on each chosen MD structure, both from the same start and seed;
    under NPT also the mean density's relative error (%), as quantity density_<label>."""
    if (bad := _none(ctx, "rdf")) is not None:
        return bad
    edges = np.linspace(0.0, float(params["rmax_A"]), int(params["nbins"]) + 1)
    r = 0.5 * (edges[1:] + edges[:-1])
    eq = int(params["equilibrate_steps"])
    run = _run({**params, "steps": eq + int(params["steps"])}, "rdf")
    out = []
    for label, atoms in _picked(ctx.md_frames, params, int(params["min_atoms"])):
        (g_ref, rho_ref, why_ref), (g, rho, why) = run_all(  # reference and model on two cores at once
            [lambda: _sample(atoms, ctx.reference(), run, eq, int(params["every"]), edges),
             lambda: _sample(atoms, calc, run, eq, int(params["every"]), edges)])
        if g is None or g_ref is None:
            out.append(Measurement(f"rdf_{label}", None, None, None, why if g is None else f"reference MD: {why_ref}"))
            continue
        err = float(np.abs(g - g_ref).sum() / g_ref.sum())
        peak, peak_ref = _first_peak(g, r), _first_peak(g_ref, r)
        out.append(Measurement(f"rdf_{label}", peak, peak_ref, err, f"first peak {peak:.2f} Å vs reference "
                               f"{peak_ref:.2f} Å ({len(atoms)} atoms, {run.ensemble}, {run.temperature_K[0]:g} K)"))
        if run.ensemble == Ensemble.NPT:
            out.append(Measurement(f"density_{label}", rho, rho_ref, 100 * abs(rho - rho_ref) / rho_ref,
                                   f"{rho:.3f} vs reference {rho_ref:.3f} g/cm³", unit="%"))
        ctx.progress(f"  rdf_{label}: error {err:.3f}" + (f", density {rho:.3f} (reference {rho_ref:.3f}) g/cm³"
                                                         if run.ensemble == Ensemble.NPT else ""))
    return out or [Measurement("rdf", None, None, None, f"no periodic MD structure matches {params['config_types']}")]
