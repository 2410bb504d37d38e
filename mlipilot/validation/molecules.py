"""Molecular checks (the QM7/B3LYP benchmark): MD on holdout molecules the scorecard's MD did not
use, energy/force errors on held-out (preferably larger) molecules, and bond lengths after relaxing
with the model from the reference geometry. No reference calculator: the labels are the reference."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import BFGS

from mlipilot.md import BondDeviation, HDetached, NonFinite, run_checked
from mlipilot.md.checks import bonds
from mlipilot.md.integrators import langevin
from mlipilot.md.pool import run_all
from mlipilot.validation.base import Measurement, ValidationContext

H_DETACH_A = 2.5  # an H farther than this from every other atom has left its molecule


def _name(f: Atoms) -> str:
    return str(f.info.get("smiles") or f.get_chemical_formula())


def _equilibrium_molecules(frames: list[Atoms], n: int, skip: tuple[str, ...] = ()) -> list[tuple[str, Atoms]]:
    """(name, bare geometry) of up to n equilibrium molecules in scorecard.molecular_stability's
    order (unseen first, largest first, by SMILES), leaving out those named in `skip` (by SMILES or
    formula, as the scorecard may name either)."""
    eq = [f for f in frames if f.info.get("geometry_type", f.info.get("config_type")) == "eq"] or frames
    eq = sorted(eq, key=lambda f: (f.info.get("config_type") != "unseen_molecule", -len(f), _name(f)))
    out: list[tuple[str, Atoms]] = []
    for f in eq:
        name = _name(f)
        if name in skip or f.get_chemical_formula() in skip or any(name == k for k, _ in out):
            continue
        out.append((name, Atoms(f.get_chemical_symbols(), positions=f.positions, pbc=False)))
        if len(out) == n:
            break
    return out


def _molecule_run(mol: Atoms, calc: Calculator, p: dict[str, Any]) -> tuple[int, str]:
    """Steps completed before the first failure (Fu et al.: non-finite, a bond stretched or
    compressed beyond the bound, a detached H), and why it stopped ("ok" when it did not)."""
    temp = float(p["temperature_K"])
    run = run_checked(langevin(mol, calc, (temp, temp), int(p["steps"]), p["timestep_fs"], p["friction"], p["seed"]),
                      [NonFinite(), BondDeviation(mol, p["max_bond_deviation_A"]), HDetached(H_DETACH_A)])
    return run.completed, run.reason or "ok"


def molecular_md(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """NVT per molecule not already run by the scorecard: value = error = fraction of steps completed."""
    n = int(params["molecules"])
    mols = _equilibrium_molecules(ctx.holdout, n, ctx.scorecard_molecules) or _equilibrium_molecules(ctx.holdout, n)
    if not mols:
        return [Measurement("completed", None, None, None, "no molecules in the holdout")]
    out = []
    results = run_all([lambda mol=mol: _molecule_run(mol, calc, params) for _, mol in mols])
    for (name, _), (good, detail) in zip(mols, results):  # the molecules on the job's cores at once
        frac = good / int(params["steps"])
        out.append(Measurement(f"completed_{name}", frac, None, frac, detail))
        ctx.progress(f"  molecular_md {name}: {good}/{params['steps']} steps — {detail}")
    return out


def molecule_errors(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """Energy (meV/atom) and force (meV/Å) RMSE on labelled molecules beyond the holdout, else on the
    holdout's unseen molecules (else the whole holdout)."""
    if ctx.reference_molecules:
        frames, what = ctx.reference_molecules, "molecules beyond the holdout"
    else:
        frames = [f for f in ctx.holdout if f.info.get("config_type") == "unseen_molecule"]
        frames, what = (frames, "unseen holdout frames") if frames else (ctx.holdout, "holdout frames")
    frames = [f for f in frames if "REF_energy" in f.info and "REF_forces" in f.arrays]
    if not frames:
        return [Measurement(q, None, None, None, "no labelled molecules") for q in ("energy_rmse", "force_rmse")]
    sizes = [len(f) for f in frames]
    detail = f"{len(frames)} {what} ({min(sizes)}–{max(sizes)} atoms)"
    e_err, f_err = [], []
    try:
        for f in frames:
            probe = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=f.pbc)
            probe.calc = calc
            e_err.append((probe.get_potential_energy() - f.info["REF_energy"]) / len(f) * 1000.0)
            f_err.append(((probe.get_forces() - f.arrays["REF_forces"]) * 1000.0).ravel())
    except Exception as e:
        why = f"model raised {type(e).__name__}: {e} on {f.get_chemical_formula()}"
        return [Measurement(q, None, None, None, why) for q in ("energy_rmse", "force_rmse")]
    e_rmse = float(np.sqrt(np.mean(np.square(e_err))))
    f_rmse = float(np.sqrt(np.mean(np.square(np.concatenate(f_err)))))
    # NaN (a model predicting non-finite values) is not a number to bound: None fails it
    e_val, f_val = (v if np.isfinite(v) else None for v in (e_rmse, f_rmse))
    ctx.progress(f"  molecule_errors: energy {e_rmse:.3g} meV/atom, forces {f_rmse:.3g} meV/Å on {detail}")
    return [Measurement("energy_rmse", e_val, None, e_val, detail),
            Measurement("force_rmse", f_val, None, f_val, detail, unit="meV/Å")]


def _bond_change(name: str, mol: Atoms, calc: Calculator, p: dict[str, Any]) -> Measurement:
    bi, bj, d0 = bonds(mol)  # the topology of the reference geometry
    quantity = f"bonds_{name}"
    atoms = mol.copy()
    atoms.calc = calc
    try:
        opt = BFGS(atoms, logfile=None)
        converged = opt.run(fmax=float(p["fmax"]), steps=int(p["max_steps"]))
    except Exception as e:
        return Measurement(quantity, None, 0.0, None, f"relaxation raised {type(e).__name__}: {e}")
    if not np.isfinite(atoms.positions).all():
        return Measurement(quantity, None, 0.0, None, "relaxation produced non-finite positions")
    if not len(bi):
        return Measurement(quantity, 0.0, 0.0, 0.0, "no bonds")
    delta = np.linalg.norm(atoms.positions[bi] - atoms.positions[bj], axis=1) - d0
    k = int(np.abs(delta).argmax())
    worst = float(abs(delta[k]))
    how = (f"converged in {opt.nsteps} steps" if converged
           else f"NOT converged after {opt.nsteps} steps (fmax {p['fmax']} eV/Å); measured where it stopped")
    detail = (f"worst {mol[bi[k]].symbol}{bi[k]}-{mol[bj[k]].symbol}{bj[k]} {d0[k]:.3f} → "
              f"{d0[k] + delta[k]:.3f} Å over {len(bi)} bonds; {how}")
    return Measurement(quantity, worst, 0.0, worst, detail)


def bond_lengths(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    """Max |Δ bond length| (Å) per molecule after relaxing with the model from the reference geometry."""
    mols = _equilibrium_molecules(ctx.holdout, int(params["molecules"]))
    if not mols:
        return [Measurement("bonds", None, 0.0, None, "no molecules in the holdout")]
    out = []
    for name, mol in mols:
        out.append(_bond_change(name, mol, calc, params))
        ctx.progress(f"  bond_lengths {name}: {out[-1].detail}")
    return out
