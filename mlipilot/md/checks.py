"""Step checks: each looks at an MDStep and returns why the run must stop (or None), and keeps the
figures it saw (the closest approach, the worst bond, ...) for the metrics.

A check is a small class: `name`, `every` (it runs on steps divisible by it, and on the last step
when `at_end`), `check(step) -> str | None` and `figures() -> dict`. The runner calls them in the
order given and stops at the first reason, so a check's figures cover the steps up to that point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from ase.neighborlist import natural_cutoffs, neighbor_list

from mlipilot.md.integrators import MDStep


class StepCheck(Protocol):
    name: str
    every: int
    at_end: bool

    def check(self, s: MDStep) -> str | None: ...

    def figures(self) -> dict[str, float]: ...


class _Base:
    name = "check"
    every = 1
    at_end = False

    def figures(self) -> dict[str, float]:
        return {}


class NonFinite(_Base):
    """Energy or forces not finite: the model blew up."""
    name = "non_finite"

    def check(self, s: MDStep) -> str | None:
        if not (np.isfinite(s.energy) and np.isfinite(s.forces).all()):
            return f"non-finite energy/forces at step {s.step}"
        return None


def is_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def min_distance(atoms: Atoms) -> float:
    """Closest pair (minimum image where periodic); inf for a single atom."""
    if len(atoms) < 2:
        return float("inf")
    d = atoms.get_all_distances(mic=is_periodic(atoms))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


@dataclass
class MinDistance(_Base):
    """Closest approach in Å. `track`: keep the closest pair seen (full distance matrix); without it
    only pairs below the bound are looked for (a neighbour list: O(N) for large cells)."""
    min_A: float | None
    every: int = 10
    at_end: bool = True
    track: bool = True
    name: str = "min_distance"
    closest: float = float("inf")

    def check(self, s: MDStep) -> str | None:
        if self.track:
            d = min_distance(s.atoms)
            self.closest = min(self.closest, d)
        else:
            near = neighbor_list("d", s.atoms, self.min_A)
            d = float(near.min()) if near.size else float("inf")
        if self.min_A is not None and d < self.min_A:
            return f"atoms {d:.2f} Å apart at step {s.step} (bound {self.min_A} Å)"
        return None

    def figures(self) -> dict[str, float]:
        return {"min_distance": self.closest} if self.track else {}


def contact_ratio(atoms: Atoms, factor: float) -> float:
    """Closest pair distance / (sum of the pair's covalent radii); inf when no pair is near."""
    radii = covalent_radii[atoms.numbers]
    cutoff = max(factor, 1.0) * 2 * float(radii.max())
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    if len(d) == 0:
        return float("inf")
    return float((d / (radii[i] + radii[j])).min())


@dataclass
class CloseContact(_Base):
    """Closest approach as a fraction of the pair's covalent-radius sum (one Å bound can't fit H–H
    and Au–Au alike); also tracks the closest pair in Å."""
    factor: float
    every: int = 5
    at_end: bool = True
    name: str = "close_contact"
    worst: float = float("inf")
    closest: float = float("inf")

    def check(self, s: MDStep) -> str | None:
        ratio = contact_ratio(s.atoms, self.factor)
        self.worst = min(self.worst, ratio)
        self.closest = min(self.closest, min_distance(s.atoms))
        if ratio < self.factor:
            return (f"close contact: a pair at {ratio:.2f}× its covalent-radius sum at step {s.step}"
                    f" (bound {self.factor})")
        return None

    def figures(self) -> dict[str, float]:
        return {"min_distance": self.closest, "min_distance_ratio": self.worst}


@dataclass
class TemperatureRunaway(_Base):
    """T above factor × target. `window` > 1: the mean ratio over that many steps (a few-atom
    system's instantaneous temperature swings too much to judge)."""
    factor: float
    window: int = 1
    name: str = "temperature_runaway"
    worst: float = 0.0
    _ratios: list = field(default_factory=list)

    def check(self, s: MDStep) -> str | None:
        if self.window <= 1:
            ratio = s.temperature_K / s.target_K
            self.worst = max(self.worst, ratio)
            if ratio > self.factor:
                return (f"temperature runaway: {s.temperature_K:.0f} K vs target {s.target_K:.0f} K"
                        f" at step {s.step}")
            return None
        self._ratios.append(s.temperature_K / s.target_K)
        if len(self._ratios) >= self.window:
            ratio = float(np.mean(self._ratios[-self.window:]))
            self.worst = max(self.worst, ratio)
            if ratio > self.factor:
                return (f"temperature runaway: mean T {ratio:.1f}× target over {self.window} steps"
                        f" at step {s.step}")
        return None

    def figures(self) -> dict[str, float]:
        return {"max_temperature_ratio": self.worst}


def bonds(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonded pairs (i < j) within 1.2 × natural cutoffs, and their lengths."""
    i, j, d = neighbor_list("ijd", atoms, natural_cutoffs(atoms, mult=1.2))
    keep = i < j
    return i[keep], j[keep], d[keep]


@dataclass
class BondDeviation(_Base):
    """A bonded pair of the start geometry stretched or compressed by more than `max_A` (broken
    topology, Fu et al.)."""
    start: Atoms
    max_A: float
    name: str = "bond_deviation"
    worst: float = 0.0

    def __post_init__(self) -> None:
        self._i, self._j, self._d0 = bonds(self.start)

    def check(self, s: MDStep) -> str | None:
        if not len(self._i):
            return None
        pos = s.atoms.positions
        dev = np.abs(np.linalg.norm(pos[self._i] - pos[self._j], axis=1) - self._d0)
        self.worst = max(self.worst, float(dev.max()))
        if dev.max() > self.max_A:
            k, sym = int(dev.argmax()), self.start.get_chemical_symbols()
            a, b = self._i[k], self._j[k]
            return (f"bond {sym[a]}{a}-{sym[b]}{b} changed by {dev[k]:.2f} Å at step {s.step}"
                    f" (bound {self.max_A} Å)")
        return None

    def figures(self) -> dict[str, float]:
        return {"max_bond_deviation": self.worst}


@dataclass
class HDetached(_Base):
    """An H atom farther than `max_A` from every other atom has left its molecule."""
    max_A: float
    name: str = "h_detached"

    def check(self, s: MDStep) -> str | None:
        h = np.flatnonzero(s.atoms.numbers == 1)
        if not h.size or len(s.atoms) < 2:
            return None
        pos = s.atoms.positions
        dist = np.linalg.norm(pos[h][:, None, :] - pos[None, :, :], axis=2)
        dist[np.arange(h.size), h] = np.inf
        far = float(dist.min(axis=1).max())
        if far > self.max_A:
            return f"H detached ({far:.2f} Å from any atom) at step {s.step}"
        return None


@dataclass
class VolumeRatio(_Base):
    """NPT: V/V0 outside [1/factor, factor] is a blow-up or collapse."""
    v0: float
    factor: float
    name: str = "volume_ratio"
    worst: float = 1.0

    def check(self, s: MDStep) -> str | None:
        vr = s.atoms.get_volume() / self.v0
        self.worst = max(self.worst, vr, 1 / vr)
        if max(vr, 1 / vr) > self.factor:
            return f"volume {vr:.2f}× its start at step {s.step} (bound {self.factor}×)"
        return None

    def figures(self) -> dict[str, float]:
        return {"max_volume_ratio": self.worst}


@dataclass
class ReferenceForce(_Base):
    """The model's force RMSE (meV/Å) against a reference calculator on sampled frames."""
    reference: Calculator
    max_meV_A: float | None
    every: int = 50
    label: str = "reference"  # how the reason names the reference
    name: str = "reference_force"
    worst: float | None = None

    def check(self, s: MDStep) -> str | None:
        probe = s.atoms.copy()
        probe.calc = self.reference
        rmse = float(np.sqrt(np.mean(((s.forces - probe.get_forces()) * 1000.0) ** 2)))
        self.worst = rmse if self.worst is None else max(self.worst, rmse)
        if self.max_meV_A is not None and rmse > self.max_meV_A:
            return (f"force error vs {self.label} {rmse:.0f} meV/Å at step {s.step}"
                    f" (bound {self.max_meV_A:.0f})")
        return None

    def figures(self) -> dict[str, float]:
        return {} if self.worst is None else {"reference_force_rmse": self.worst}


@dataclass
class MaxForce(_Base):
    """A force component above `max_eV_A`: a model pushing atoms apart (or together) far harder than any
    physical configuration at these temperatures does, usually a step before it explodes."""
    max_eV_A: float
    name: str = "max_force"
    worst: float = 0.0

    def check(self, s: MDStep) -> str | None:
        f = float(abs(s.forces).max())
        self.worst = max(self.worst, f)
        if f > self.max_eV_A:
            return f"force {f:.1f} eV/Å at step {s.step} (bound {self.max_eV_A:g} eV/Å)"
        return None

    def figures(self) -> dict[str, float]:
        return {"max_force": self.worst}


@dataclass
class Observe(_Base):
    """Not a check: calls `fn(step)` on due steps (sampling frames, accumulating g(r), energies)."""
    fn: Callable[[MDStep], None]
    every: int = 1
    name: str = "observe"

    def check(self, s: MDStep) -> str | None:
        self.fn(s)
        return None
