"""Bulk fcc properties of a model against the reference calculator: lattice constant and bulk modulus
(equation of state), elastic constants, vacancy and surface energies, phonon frequencies (phonopy) —
computed by mlipilot.properties, the same functions the scorecard's property metrics use.

Each property is computed by one function for the model and for the reference, each at its own
equilibrium lattice constant, so the two numbers differ only by the calculator. A model that raises or
predicts non-finite numbers gives Measurements with value None: a bad model is a result, not a crash."""

from __future__ import annotations

import math
from typing import Any, Callable

from ase.calculators.calculator import Calculator

from mlipilot import properties as P
from mlipilot.validation.base import Measurement, ValidationContext

Compute = Callable[[Calculator, str, float], dict[str, float]]  # (calc, element, a0) -> value by quantity
FACETS, QPOINTS = P.FACETS, P.QPOINTS


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]


def _compare(calc: Calculator, ctx: ValidationContext, name: str, quantities: list[str], unit: str,
             compute: Compute, note: str, absolute: bool = False) -> list[Measurement]:
    """Run `compute` for the reference and the model; error is 100*|v-r|/|r| (or |v-r| if absolute)."""
    if ctx.reference is None or ctx.element is None or ctx.lattice_a is None:
        return [Measurement(q, None, None, None, f"{name} needs a bulk element, lattice constant and reference")
                for q in quantities]
    try:
        ref = compute(ctx.reference(), ctx.element, ctx.lattice_a)
    except Exception as e:
        return [Measurement(q, None, None, None, f"reference failed: {_why(e)}") for q in quantities]
    try:
        val = compute(calc, ctx.element, ctx.lattice_a)
        bad = [q for q in quantities if not math.isfinite(val[q])]
        if bad:
            raise ValueError(f"non-finite {', '.join(bad)}")
    except Exception as e:
        ctx.progress(f"  {name}: model failed: {_why(e)}")
        return [Measurement(q, None, ref[q], None, f"model failed: {_why(e)}") for q in quantities]
    out = []
    for q in quantities:
        v, r = val[q], ref[q]
        err = abs(v - r) if absolute else (100 * abs(v - r) / abs(r) if r else None)
        out.append(Measurement(q, v, r, err, f"{q} {v:.4g} {unit} vs reference {r:.4g} {unit}; {note}"))
    ctx.progress(f"  {name}: " + ", ".join(f"{m.quantity} {m.value:.4g} (ref {m.reference:.4g})" for m in out))
    return out


def lattice_constant(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    return _compare(calc, ctx, "lattice_constant", ["a"], "Å",
                    lambda c, el, a0: {"a": P.equilibrium(c, el, a0)[0]}, "EOS fit, ±3 % volume")


def bulk_modulus(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    return _compare(calc, ctx, "bulk_modulus", ["B"], "GPa",
                    lambda c, el, a0: {"B": P.equilibrium(c, el, a0)[1]}, "EOS fit, ±3 % volume")


def elastic_constants(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    s = float(params["strain"])
    quantities = [str(q) for q in params.get("quantities") or ("C11", "C12", "C44")]
    return _compare(calc, ctx, "elastic_constants", quantities, "GPa",
                    lambda c, el, a0: P.elastic_constants(c, el, a0, s), f"±{s:g} strain at own a0")


def vacancy_formation(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    n, relax = int(params["supercell"]), int(params.get("relax_steps") or 0)
    how = f"relaxed at fixed cell ({relax} FIRE steps at most)" if relax else "unrelaxed positions"
    return _compare(calc, ctx, "vacancy_formation", ["E_vac"], "eV",
                    lambda c, el, a0: {"E_vac": P.vacancy_formation(c, el, a0, n, relax)},
                    f"{4 * n**3}-atom cell, {how}", absolute=True)


def surface_energy(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    facets, layers = [str(f) for f in params["facets"]], int(params["layers"])
    return _compare(calc, ctx, "surface_energy", [f"E_surf_{f}" for f in facets], "J/m²",
                    lambda c, el, a0: P.surface_energies(c, el, a0, facets, layers),
                    f"{layers}-layer slabs, unrelaxed, at own a0")


def phonons(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    points, n, dist = [str(p) for p in params["points"]], int(params["supercell"]), float(params["displacement_A"])
    return _compare(calc, ctx, "phonons", [f"nu_{p}_max" for p in points], "THz",
                    lambda c, el, a0: P.phonon_maxima(c, el, a0, points, n, dist),
                    f"phonopy, {n}x conventional cell, {dist:g} Å displacement")
