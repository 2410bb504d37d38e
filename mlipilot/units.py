"""Label units: benchmark.yaml's `energy_unit` / `force_unit`, and the conversion `init` applies.

MLIPilot trains and scores in eV and eV/Å. A benchmark whose labels are in other units names them,
and `init` converts REF_energy, REF_forces and REF_stress (energy/Å³, scaled like the energy) of
every split while copying them into the run, so nothing downstream ever sees another unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase import units as u

# the value of one unit in eV / eV/Å
ENERGY_UNITS: dict[str, float] = {"eV": 1.0, "meV": 1e-3, "kcal/mol": u.kcal / u.mol, "kJ/mol": u.kJ / u.mol,
                                  "Hartree": u.Hartree, "Ry": u.Rydberg}
FORCE_UNITS: dict[str, float] = {"eV/Å": 1.0, "meV/Å": 1e-3, "kcal/mol/Å": u.kcal / u.mol,
                                 "Hartree/Bohr": u.Hartree / u.Bohr, "eV/Bohr": 1.0 / u.Bohr,
                                 "Ry/Bohr": u.Rydberg / u.Bohr}
# the force unit that goes with an energy unit (what a code writing that energy unit usually writes)
PAIRED: dict[str, str] = {"eV": "eV/Å", "meV": "meV/Å", "kcal/mol": "kcal/mol/Å", "Hartree": "Hartree/Bohr",
                          "Ry": "Ry/Bohr"}


def _canonical(value: str, table: dict[str, float]) -> str | None:
    """Case-insensitive, A/Ang/Angstrom for Å, Ha for Hartree: users write units many ways."""
    def norm(s: str) -> str:
        s = s.strip().lower().replace(" ", "").replace("ångström", "å").replace("angstrom", "å")
        s = s.replace("/ang", "/å").replace("/a", "/å") if s.endswith(("/ang", "/a")) else s
        return s.replace("hartree", "ha").replace("rydberg", "ry")
    return next((k for k in table if norm(k) == norm(value)), None)


@dataclass(frozen=True)
class LabelUnits:
    """The units a benchmark's labels are written in (canonical names of ENERGY_UNITS / FORCE_UNITS)."""
    energy: str = "eV"
    force: str = "eV/Å"

    @property
    def energy_factor(self) -> float:
        return ENERGY_UNITS[self.energy]

    @property
    def force_factor(self) -> float:
        return FORCE_UNITS[self.force]

    @property
    def identity(self) -> bool:
        return self.energy == "eV" and self.force == "eV/Å"

    def describe(self) -> str:
        parts = [f"energies {self.energy} → eV (× {self.energy_factor:.6g})"] if self.energy != "eV" else []
        if self.force != "eV/Å":
            parts.append(f"forces {self.force} → eV/Å (× {self.force_factor:.6g})")
        return ", ".join(parts)


def parse_unit(value: object, kind: str) -> str | None:
    """The canonical name of an `energy_unit` / `force_unit` value; None when it is not one."""
    table = ENERGY_UNITS if kind == "energy" else FORCE_UNITS
    return _canonical(value, table) if isinstance(value, str) else None


def convert_frames(frames: list, units: LabelUnits) -> list:
    """Scale REF_energy, REF_stress and REF_forces in place to eV, eV/Å³ and eV/Å; returns frames."""
    if units.identity:
        return frames
    for atoms in frames:
        for key in ("REF_energy", "REF_stress"):
            if key in atoms.info:
                try:
                    atoms.info[key] = atoms.info[key] * units.energy_factor
                except TypeError:  # a non-numeric label: the data check reports it
                    pass
        if "REF_forces" in atoms.arrays and atoms.arrays["REF_forces"].dtype.kind == "f":
            atoms.arrays["REF_forces"] = atoms.arrays["REF_forces"] * units.force_factor
    return frames


def copy_labels(src: Path, dst: Path, units: LabelUnits) -> None:
    """Copy an extxyz file, its labels converted to eV / eV/Å (byte-identical when already so)."""
    import shutil

    if units.identity:
        shutil.copy(src, dst)
        return
    from ase.io import read, write

    write(dst, convert_frames(list(read(src, index=":", format="extxyz")), units), format="extxyz")


# --- metric units: the unit a scorecard writes a constraint or composite term in (`unit:`), converted to
# the unit the scorer measures the metric in (mlipilot.scorecard.metrics.KNOWN_METRICS, a plugin's UNIT)
_LENGTHS = {"å": 1.0, "nm": 10.0, "pm": 0.01, "bohr": u.Bohr}
_PER_ATOM_STEP = {"µs": 1.0, "us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6}
_DIMENSIONLESS = {"1", "", "-", "none", "ratio", "fraction", "count", "counts", "runs"}
UNIT_EXAMPLES = {"meV/atom": "eV/atom, kcal/mol/atom", "meV/Å": "eV/Å, eV/Bohr, Hartree/Bohr",
                 "meV/Å³": "eV/Å³, GPa", "Å": "nm, Bohr", "µs/atom/step": "ns/atom/step, ms/atom/step"}


def _norm(s: str) -> str:
    s = s.strip().lower().replace(" ", "").replace("ångström", "å").replace("angstrom", "å")
    for old, new in (("ang", "å"), ("³", "^3"), ("**3", "^3")):
        s = s.replace(old, new)
    s = s.replace("/a^3", "/å^3").replace("/a3", "/å^3").replace("/å3", "/å^3")
    if s.endswith("/a"):
        s = s[:-2] + "/å"
    return "å" if s == "a" else s


def metric_unit_factor(given: str, scorer: str) -> float | None:
    """What a bound written in `given` is multiplied by to be in `scorer` (the unit the scorer measures
    the metric in): 1000 for eV/atom against meV/atom; None when `given` is no unit of that quantity."""
    g, want = _norm(given), _norm(scorer)
    if g == want:
        return 1.0
    if scorer == "meV/atom" and g.endswith("/atom"):
        e = _canonical(given.strip()[:given.strip().lower().rfind("/atom")], ENERGY_UNITS)
        return ENERGY_UNITS[e] / 1e-3 if e else None
    if scorer == "meV/Å":
        f = _canonical(given, FORCE_UNITS)
        return FORCE_UNITS[f] / 1e-3 if f else None
    if scorer == "meV/Å³":
        if g == "gpa":
            return u.GPa / 1e-3
        if g.endswith("/å^3"):
            e = _canonical(given.strip()[:given.strip().rfind("/")], ENERGY_UNITS)
            return ENERGY_UNITS[e] / 1e-3 if e else None
        return None
    if scorer == "Å":
        return _LENGTHS.get(g)
    if scorer == "µs/atom/step" and g.endswith("/atom/step"):
        return _PER_ATOM_STEP.get(g.removesuffix("/atom/step"))
    if want in _DIMENSIONLESS or scorer == "count":
        return 1.0 if g in _DIMENSIONLESS else None
    return None


def convert_bound(metric: str, given: str, scorer: str) -> tuple[float | None, str]:
    """(factor, fix): the factor from `given` to the scorer's unit, or None and what to write instead."""
    factor = metric_unit_factor(given, scorer)
    others = UNIT_EXAMPLES.get(scorer)
    # eV/Å on an energy metric: the energy it names per atom is likely what was meant (0.02 eV/Å -> 0.02 eV/atom)
    num = given.strip().split("/")[0]
    meant = {"meV/atom": f"{num}/atom", "meV/Å": f"{num}/Å", "meV/Å³": f"{num}/Å³"}.get(scorer)
    f = metric_unit_factor(meant, scorer) if meant and _norm(meant) != _norm(given) else None
    if f is not None and f != 1.0:
        return factor, (f"write unit: {meant} (converted: × {f:.6g} to {scorer}, the unit the scorer uses) or "
                        f"unit: {scorer}")
    return factor, f"write unit: {scorer}" + (f" (or one converted to it: {others})" if others else "")
