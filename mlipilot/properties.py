"""The property library: what a calculator predicts for a crystal's physics, one function per property,
used alike by the scorecard's property metrics (small cells, every trial: mlipilot.scorecard.properties)
and by `mlipilot validate` (its own, larger cells: mlipilot.validation.bulk_properties). A property is
computed at the calculator's own equilibrium lattice constant, so a model and its reference differ
only by the calculator. fcc elements (the bulk benchmarks).

Every function raises on a non-finite energy or a curve without a minimum: the caller turns that into a
failed measurement, never a crashed job."""

from __future__ import annotations

import math
import weakref
from typing import Callable

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc100, fcc110, fcc111
from ase.calculators.calculator import Calculator
from ase.eos import EquationOfState

EOS_WINDOW = 0.03  # ± relative volume of the EOS fit
EOS_POINTS = 7
FACETS = {"111": fcc111, "100": fcc100, "110": fcc110}
# High-symmetry points in the reciprocal basis of the fcc primitive cell (phonopy's primitive_matrix "F").
QPOINTS = {"X": (0.5, 0.0, 0.5), "L": (0.5, 0.5, 0.5), "W": (0.5, 0.25, 0.75), "K": (0.375, 0.375, 0.75)}


def energy(atoms: Atoms, calc: Calculator) -> float:
    atoms.calc = calc
    e = float(atoms.get_potential_energy())
    if not math.isfinite(e):
        raise ValueError("non-finite energy")
    return e


def cubic(element: str, a: float) -> Atoms:
    return bulk(element, "fcc", a=a, cubic=True)


def eos_fit(energy_of: Callable[[float], float], a0: float) -> tuple[float, float]:
    """(a, B in GPa) at the minimum of energy_of(a), a cell whose volume is a**3 (a cubic cell's lattice
    constant, or the cube root of any cell's volume under isotropic scaling)."""
    # The model's minimum may be far from a0: a coarse scan (±12 % in a), the parabola through the
    # three points around its minimum, then the EOS on ±3 % volume around that (recentred once if the
    # fitted minimum lands off-centre, so the fit never extrapolates far).
    coarse = a0 * np.linspace(0.88, 1.12, 9)
    ec = [energy_of(a) for a in coarse]
    i = int(np.argmin(ec))
    if i in (0, len(coarse) - 1):
        raise ValueError(f"no energy minimum for a in [{coarse[0]:.2f}, {coarse[-1]:.2f}] Å")
    c2, c1, _ = np.polyfit(coarse[i - 1:i + 2], ec[i - 1:i + 2], 2)
    v = (-c1 / (2 * c2)) ** 3
    for _ in range(2):
        vols = v * np.linspace(1 - EOS_WINDOW, 1 + EOS_WINDOW, EOS_POINTS)
        v0, _, b = EquationOfState(vols, [energy_of(x ** (1 / 3)) for x in vols], eos="sj").fit()
        if abs(v0 / v - 1) < EOS_WINDOW / 3:
            break
        v = v0
    if not (math.isfinite(v0) and math.isfinite(b)):
        raise ValueError("the EOS fit did not converge")
    return float(v0) ** (1 / 3), float(b) / units.GPa


# Every property needs the calculator's own equilibrium: fitted once per calculator object. Weak keys, so
# an entry dies with its calculator and a later object at a recycled id() never sees it.
_EOS_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def equilibrium(calc: Calculator, element: str, a0: float) -> tuple[float, float]:
    """(a in Å, B in GPa) at the minimum of the calculator's fcc energy-volume curve (4-atom cell)."""
    try:
        cache = _EOS_CACHE.setdefault(calc, {})
    except TypeError:  # not weak-referenceable: no caching
        cache = {}
    if (element, a0) not in cache:
        cache[(element, a0)] = eos_fit(lambda a: energy(cubic(element, a), calc), a0)
    return cache[(element, a0)]


def elastic_constants(calc: Calculator, element: str, a0: float, strain: float) -> dict[str, float]:
    """C11, C12, C44 (GPa) by central stress differences at ±strain on the 4-atom cell; also the
    derived C' = (C11 - C12)/2 and the Zener anisotropy A = 2 C44 / (C11 - C12)."""
    base = cubic(element, equilibrium(calc, element, a0)[0])

    def stress(eps: np.ndarray) -> np.ndarray:  # Voigt xx yy zz yz xz xy, GPa
        atoms = base.copy()
        atoms.set_cell(base.cell[:] @ (np.eye(3) + eps), scale_atoms=True)  # eps symmetric
        atoms.calc = calc
        return atoms.get_stress(voigt=True) / units.GPa

    # Central differences cancel the residual stress of the fitted equilibrium. No internal relaxation
    # is needed: every atom of fcc is an inversion centre, so a homogeneous strain leaves no force on
    # any atom (the 4-atom cell stays a perfect strained lattice).
    uni = np.zeros((3, 3))
    uni[0, 0] = strain
    d = (stress(uni) - stress(-uni)) / (2 * strain)
    shear = np.zeros((3, 3))
    shear[1, 2] = shear[2, 1] = strain / 2  # tensor eps_yz = s/2: engineering strain gamma_yz = s
    d44 = (stress(shear) - stress(-shear)) / (2 * strain)  # sigma_yz = C44 * gamma_yz
    c11, c12, c44 = float(d[0]), float(d[1] + d[2]) / 2, float(d44[3])
    out = {"C11": c11, "C12": c12, "C44": c44, "C_prime": (c11 - c12) / 2,
           "anisotropy": 2 * c44 / (c11 - c12) if c11 != c12 else float("nan")}
    if not all(math.isfinite(v) for k, v in out.items() if k != "anisotropy"):
        raise ValueError("non-finite stress")
    return out


def vacancy_formation(calc: Calculator, element: str, a0: float, supercell: int, relax_steps: int = 0,
                      fmax: float = 0.01) -> float:
    """E_vac (eV) in a (4 n³)-atom cell at the calculator's own lattice constant: unrelaxed positions,
    or relaxed at fixed cell for up to `relax_steps` FIRE steps (fmax eV/Å)."""
    perfect = cubic(element, equilibrium(calc, element, a0)[0]) * (supercell, supercell, supercell)
    defect = perfect.copy()
    del defect[0]
    if relax_steps:
        from ase.optimize import FIRE

        defect.calc = calc
        FIRE(defect, logfile=None).run(fmax=fmax, steps=relax_steps)
    size = len(perfect)
    return energy(defect, calc) - (size - 1) / size * energy(perfect, calc)


def surface_energies(calc: Calculator, element: str, a0: float, facets: list[str], layers: int,
                     vacuum: float = 8.0) -> dict[str, float]:
    """E_surf_<facet> (J/m²) of unrelaxed `layers`-layer slabs at the calculator's own lattice constant."""
    a = equilibrium(calc, element, a0)[0]
    e_atom = energy(cubic(element, a), calc) / 4
    out = {}
    for f in facets:
        if f not in FACETS:
            raise ValueError(f"unknown facet {f!r} (known: {', '.join(FACETS)})")
        slab = FACETS[f](element, size=(1, 1, layers), a=a, vacuum=vacuum, periodic=True)
        area = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
        gamma = (energy(slab, calc) - len(slab) * e_atom) / (2 * area)  # eV/Å², two faces
        out[f"E_surf_{f}"] = gamma / (units.J / units.m**2)
    return out


def phonon_maxima(calc: Calculator, element: str, a0: float, points: list[str], supercell: int,
                  displacement: float) -> dict[str, float]:
    """nu_<q>_max (THz): the highest phonon frequency at each q-point (phonopy, finite displacements)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unknown = [p for p in points if p not in QPOINTS]
    if unknown:
        raise ValueError(f"unknown q-point(s) {unknown} (known: {', '.join(QPOINTS)})")
    cell = cubic(element, equilibrium(calc, element, a0)[0])
    # Conventional cell x n with the fcc primitive matrix (phonopy's usual recipe): for n = 3 the
    # 108-atom supercell spans 1.5 a each way, past EMT's cutoff, where n x primitive would not.
    ph = Phonopy(PhonopyAtoms(symbols=cell.get_chemical_symbols(), cell=cell.cell[:],
                              scaled_positions=cell.get_scaled_positions()),
                 supercell_matrix=np.eye(3, dtype=int) * supercell, primitive_matrix="F", log_level=0)
    ph.generate_displacements(distance=displacement)  # fcc: one symmetry-independent displacement
    forces = []
    for sc in ph.supercells_with_displacements:
        atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        atoms.calc = calc
        f = atoms.get_forces()
        if not np.isfinite(f).all():
            raise ValueError("non-finite forces")
        forces.append(f)
    ph.forces = forces
    ph.produce_force_constants(show_drift=False)
    freqs = ph.run_qpoints([QPOINTS[p] for p in points]).frequencies  # THz; imaginary ones negative
    return {f"nu_{p}_max": float(np.max(fr)) for p, fr in zip(points, freqs)}
