"""Bulk fcc properties of a model against the reference calculator: lattice constant and bulk modulus
(equation of state), elastic constants, vacancy and surface energies, phonon frequencies (phonopy).

Each property is computed by one function for the model and for the reference, each at its own
equilibrium lattice constant, so the two numbers differ only by the calculator. A model that raises or
predicts non-finite numbers gives Measurements with value None: a bad model is a result, not a crash."""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc110, fcc111
from ase.calculators.calculator import Calculator
from ase.eos import EquationOfState

from mlipilot.validation.base import Measurement, ValidationContext

Compute = Callable[[Calculator, str, float], dict[str, float]]  # (calc, element, a0) -> value by quantity

EOS_WINDOW = 0.03  # ± relative volume of the EOS fit
EOS_POINTS = 7
FACETS = {"111": fcc111, "100": fcc100, "110": fcc110}
# High-symmetry points in the reciprocal basis of the fcc primitive cell (phonopy's primitive_matrix "F").
QPOINTS = {"X": (0.5, 0.0, 0.5), "L": (0.5, 0.5, 0.5), "W": (0.5, 0.25, 0.75), "K": (0.375, 0.375, 0.75)}


def _energy(atoms: Atoms, calc: Calculator) -> float:
    atoms.calc = calc
    e = float(atoms.get_potential_energy())
    if not math.isfinite(e):
        raise ValueError("non-finite energy")
    return e


def _cubic(element: str, a: float) -> Atoms:
    return bulk(element, "fcc", a=a, cubic=True)


def _fit_eos(calc: Calculator, element: str, a0: float) -> tuple[float, float]:
    return eos_fit(lambda a: _energy(_cubic(element, a), calc), a0)


def eos_fit(energy: Callable[[float], float], a0: float) -> tuple[float, float]:
    """(a, B in GPa) at the minimum of energy(a), a cell whose volume is a**3 (a cubic cell's lattice
    constant, or the cube root of any cell's volume under isotropic scaling)."""
    # The model's minimum may be far from a0: a coarse scan (±12 % in a), the parabola through the
    # three points around its minimum, then the EOS on ±3 % volume around that (recentred once if the
    # fitted minimum lands off-centre, so the fit never extrapolates far).
    coarse = a0 * np.linspace(0.88, 1.12, 9)
    ec = [energy(a) for a in coarse]
    i = int(np.argmin(ec))
    if i in (0, len(coarse) - 1):
        raise ValueError(f"no energy minimum for a in [{coarse[0]:.2f}, {coarse[-1]:.2f}] Å")
    c2, c1, _ = np.polyfit(coarse[i - 1:i + 2], ec[i - 1:i + 2], 2)
    v = (-c1 / (2 * c2)) ** 3
    for _ in range(2):
        vols = v * np.linspace(1 - EOS_WINDOW, 1 + EOS_WINDOW, EOS_POINTS)
        v0, _, b = EquationOfState(vols, [energy(x ** (1 / 3)) for x in vols], eos="sj").fit()
        if abs(v0 / v - 1) < EOS_WINDOW / 3:
            break
        v = v0
    return float(v0) ** (1 / 3), float(b) / units.GPa


# Every check needs the calculator's own equilibrium: fit it once per calculator object. Weak keys, so
# an entry dies with its calculator and a later object at a recycled id() never sees it.
_EOS_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _equilibrium(calc: Calculator, element: str, a0: float) -> tuple[float, float]:
    """(a in Å, B in GPa) at the minimum of the calculator's fcc energy-volume curve."""
    try:
        cache = _EOS_CACHE.setdefault(calc, {})
    except TypeError:  # not weak-referenceable: no caching
        cache = {}
    if (element, a0) not in cache:
        cache[(element, a0)] = _fit_eos(calc, element, a0)
    return cache[(element, a0)]


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
                    lambda c, el, a0: {"a": _equilibrium(c, el, a0)[0]}, "EOS fit, ±3 % volume")


def bulk_modulus(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    return _compare(calc, ctx, "bulk_modulus", ["B"], "GPa",
                    lambda c, el, a0: {"B": _equilibrium(c, el, a0)[1]}, "EOS fit, ±3 % volume")


def elastic_constants(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    s = float(params["strain"])

    def compute(c: Calculator, el: str, a0: float) -> dict[str, float]:
        base = _cubic(el, _equilibrium(c, el, a0)[0])

        def stress(eps: np.ndarray) -> np.ndarray:  # Voigt xx yy zz yz xz xy, GPa
            atoms = base.copy()
            atoms.set_cell(base.cell[:] @ (np.eye(3) + eps), scale_atoms=True)  # eps symmetric
            atoms.calc = c
            return atoms.get_stress(voigt=True) / units.GPa

        # Central differences cancel the residual stress of the fitted equilibrium. No internal
        # relaxation is needed: every atom of fcc is an inversion centre, so a homogeneous strain
        # leaves no force on any atom (the 4-atom cell stays a perfect strained lattice).
        uni = np.zeros((3, 3))
        uni[0, 0] = s
        d = (stress(uni) - stress(-uni)) / (2 * s)
        shear = np.zeros((3, 3))
        shear[1, 2] = shear[2, 1] = s / 2  # tensor eps_yz = s/2: engineering strain gamma_yz = s
        d44 = (stress(shear) - stress(-shear)) / (2 * s)  # sigma_yz = C44 * gamma_yz
        return {"C11": float(d[0]), "C12": float(d[1] + d[2]) / 2, "C44": float(d44[3])}

    return _compare(calc, ctx, "elastic_constants", ["C11", "C12", "C44"], "GPa", compute,
                    f"±{s:g} strain at own a0")


def vacancy_formation(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    n = int(params["supercell"])

    def compute(c: Calculator, el: str, a0: float) -> dict[str, float]:
        perfect = _cubic(el, _equilibrium(c, el, a0)[0]) * (n, n, n)
        defect = perfect.copy()
        del defect[0]
        size = len(perfect)
        return {"E_vac": _energy(defect, c) - (size - 1) / size * _energy(perfect, c)}

    return _compare(calc, ctx, "vacancy_formation", ["E_vac"], "eV", compute,
                    f"{4 * n**3}-atom cell, unrelaxed positions", absolute=True)


def surface_energy(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    facets, layers = [str(f) for f in params["facets"]], int(params["layers"])

    def compute(c: Calculator, el: str, a0: float) -> dict[str, float]:
        a = _equilibrium(c, el, a0)[0]
        e_atom = _energy(_cubic(el, a), c) / 4
        out = {}
        for f in facets:
            if f not in FACETS:
                raise ValueError(f"unknown facet {f!r} (known: {', '.join(FACETS)})")
            slab = FACETS[f](el, size=(1, 1, layers), a=a, vacuum=8.0, periodic=True)
            area = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
            gamma = (_energy(slab, c) - len(slab) * e_atom) / (2 * area)  # eV/Å², two faces
            out[f"E_surf_{f}"] = gamma / (units.J / units.m**2)
        return out

    return _compare(calc, ctx, "surface_energy", [f"E_surf_{f}" for f in facets], "J/m²", compute,
                    f"{layers}-layer slabs, unrelaxed, at own a0")


def phonons(calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]:
    points, n, dist = [str(p) for p in params["points"]], int(params["supercell"]), float(params["displacement_A"])

    def compute(c: Calculator, el: str, a0: float) -> dict[str, float]:
        from phonopy import Phonopy
        from phonopy.structure.atoms import PhonopyAtoms

        unknown = [p for p in points if p not in QPOINTS]
        if unknown:
            raise ValueError(f"unknown q-point(s) {unknown} (known: {', '.join(QPOINTS)})")
        cell = _cubic(el, _equilibrium(c, el, a0)[0])
        # Conventional cell x n with the fcc primitive matrix (phonopy's usual recipe): for n = 3 the
        # 108-atom supercell spans 1.5 a each way, past EMT's cutoff, where n x primitive would not.
        ph = Phonopy(PhonopyAtoms(symbols=cell.get_chemical_symbols(), cell=cell.cell[:],
                                  scaled_positions=cell.get_scaled_positions()),
                     supercell_matrix=np.eye(3, dtype=int) * n, primitive_matrix="F", log_level=0)
        ph.generate_displacements(distance=dist)  # fcc: one symmetry-independent displacement
        forces = []
        for sc in ph.supercells_with_displacements:
            atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
            atoms.calc = c
            f = atoms.get_forces()
            if not np.isfinite(f).all():
                raise ValueError("non-finite forces")
            forces.append(f)
        ph.forces = forces
        ph.produce_force_constants(show_drift=False)
        freqs = ph.run_qpoints([QPOINTS[p] for p in points]).frequencies  # THz; imaginary ones negative
        return {f"nu_{p}_max": float(np.max(fr)) for p, fr in zip(points, freqs)}

    return _compare(calc, ctx, "phonons", [f"nu_{p}_max" for p in points], "THz", compute,
                    f"phonopy, {n}x conventional cell, {dist:g} Å displacement")
