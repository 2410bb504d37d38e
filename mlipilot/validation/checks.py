"""The validation check kinds a validation spec may name: one registry line each.

A kind is a function ``(calc, ctx, params) -> list[Measurement]`` named by dotted path (imported
only when a validation runs), the unit of its measurements' errors, and its parameters with their
defaults (the spec's keys are checked against them when it loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlipilot.registry import Registry, load_dotted
from mlipilot.validation.base import CheckFn


@dataclass(frozen=True)
class CheckKind:
    function: str  # "module:function"
    unit: str  # of Measurement.error
    params: dict[str, Any] = field(default_factory=dict)  # allowed parameters and their defaults
    description: str = ""
    # may run in a forked child beside others (MD through mlipilot.md): a library that keeps a thread
    # pool (phonopy's Rust/rayon) hangs in a child forked after the parent used it, so others run inline
    forkable: bool = False

    def load(self) -> CheckFn:
        return load_dotted(self.function)


BULK = "mlipilot.validation.bulk_properties"
DYN = "mlipilot.validation.dynamics"
MOL = "mlipilot.validation.molecules"
STR = "mlipilot.validation.structures"
PICK = {"config_types": ["*"], "per_config_type": 1, "max_structures": 3}  # as structures.PICK (no import:
MD = {"temperature_K": 1200.0, "steps": 1000, "timestep_fs": 2.0, "friction": 0.02, "ensemble": "nvt",  # the
      "pressure_GPa": 0.0, "seed": 0}  # registry stays light until a check runs)

CHECK_KINDS: Registry[CheckKind] = Registry("check kind", {
    # --- dynamics (any bulk fcc element; the RDF against the reference calculator's own trajectory)
    "long_md": CheckKind(f"{DYN}:long_md", "fraction", {
        "supercell": 5, "temperatures_K": [1300.0], "ramp_K": None, "steps": 1500, "timestep_fs": 2.0,
        "friction": 0.02, "min_distance_A": 1.8, "max_temperature_factor": 2.0, "seed": 0},
        "fraction of the MD steps completed before a failure (non-finite, close contact, runaway)", forkable=True),
    "nve_drift": CheckKind(f"{DYN}:nve_drift", "meV/atom/ps", {
        "supercell": 3, "temperature_K": 600.0, "steps": 500, "timestep_fs": 2.0, "seed": 0},
        "|total-energy drift| of a VelocityVerlet run (linear fit)", forkable=True),
    "rdf": CheckKind(f"{DYN}:rdf_error", "1", {
        "supercell": 3, "temperature_K": 1300.0, "steps": 400, "equilibrate_steps": 100, "every": 10,
        "rmax_A": 6.0, "nbins": 60, "timestep_fs": 2.0, "seed": 0},
        "integrated |g_model(r) - g_reference(r)| dr / integrated g_reference(r) dr, Langevin MD of both", forkable=True),
    "diffusion": CheckKind(f"{DYN}:diffusion", "%", {
        "supercell": 3, "vacancies": 8, "melt_K": 2500.0, "melt_steps": 500, "temperature_K": 1800.0, "steps": 1000, "every": 10,
        "timestep_fs": 2.0, "friction": 0.002, "min_distance_A": 1.8, "seed": 0},
        "the liquid's self-diffusion coefficient (MSD slope) vs the reference's own trajectory", forkable=True),
    # --- bulk properties the training never targeted, against the reference calculator
    "lattice_constant": CheckKind(f"{BULK}:lattice_constant", "%", {}, "fcc lattice constant (EOS fit)"),
    "bulk_modulus": CheckKind(f"{BULK}:bulk_modulus", "%", {}, "bulk modulus (EOS fit)"),
    "elastic_constants": CheckKind(f"{BULK}:elastic_constants", "%", {"strain": 0.005,
                                   "quantities": ["C11", "C12", "C44"]},
                                   "C11, C12, C44 (and C_prime, anisotropy) from finite strains of the relaxed cubic cell"),
    "vacancy_formation": CheckKind(f"{BULK}:vacancy_formation", "eV", {"supercell": 3, "relax_steps": 0},
                                   "vacancy formation energy (unrelaxed, or relaxed at fixed cell), absolute error"),
    "surface_energy": CheckKind(f"{BULK}:surface_energy", "%", {"facets": ["111", "100"], "layers": 5},
                                "(111)/(100) surface energies of unrelaxed slabs"),
    "phonons": CheckKind(f"{BULK}:phonons", "%", {"supercell": 3, "points": ["X", "L"], "displacement_A": 0.01},
                         "phonon frequencies at high-symmetry points (phonopy)"),
    # --- the benchmark's own structures (any elements; picked by config_type glob like the scorecard's MD)
    "structure_volume": CheckKind(f"{STR}:structure_volume", "%", dict(PICK),
                                  "equilibrium volume per atom of each chosen holdout structure (isotropic EOS)"),
    "structure_bulk_modulus": CheckKind(f"{STR}:structure_bulk_modulus", "%", dict(PICK),
                                        "bulk modulus of each chosen holdout structure (isotropic EOS)"),
    "structure_md": CheckKind(f"{STR}:structure_md", "fraction", {**PICK, **MD, "min_atoms": 108},
                              "the scorecard's MD checks, longer and larger, on md_structures (or holdout picks); "
                              "fraction completed", forkable=True),
    "structure_rdf": CheckKind(f"{STR}:structure_rdf", "1", {**PICK, **MD, "min_atoms": 108, "steps": 300,
                               "equilibrate_steps": 100, "every": 10, "rmax_A": 6.0, "nbins": 60},
                               "g(r) (and the NPT density, %) vs the reference's own MD from the same start", forkable=True),
    # --- molecules (the molecular benchmark)
    "molecular_md": CheckKind(f"{MOL}:molecular_md", "fraction", {
        "molecules": 4, "temperature_K": 500.0, "steps": 2000, "timestep_fs": 0.5, "friction": 0.02,
        "max_bond_deviation_A": 0.5, "seed": 0},
        "NVT on holdout molecules the scorecard's MD did not use; fraction completed (Fu et al. bond criterion)", forkable=True),
    "molecule_errors": CheckKind(f"{MOL}:molecule_errors", "meV/atom", {},
                                 "energy (meV/atom) and force (meV/Å) errors on held-out, preferably larger, molecules"),
    "bond_lengths": CheckKind(f"{MOL}:bond_lengths", "Å", {"molecules": 4, "fmax": 0.05, "max_steps": 200},
                              "bond lengths after relaxing with the model vs the reference (B3LYP) geometry"),
})
