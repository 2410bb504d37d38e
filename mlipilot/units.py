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
