"""A two-element fcc alloy labelled with ASE's EMT, written as a *user's own* benchmark folder
(extxyz files + benchmark.yaml + scorecard.yaml + validation.yaml): the worked example of README "Bring your own
system", and the periodic multi-element case the tests run.

    python -m mlipilot.datasets.alloy_emt OUT_DIR [--elements Cu Au] [--size small|default]

Deterministic for (elements, seed, size). EMT covers Al, Cu, Ag, Au, Ni, Pd, Pt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms, units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.data import atomic_numbers, reference_states
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from mlipilot.datasets.cu_emt import _label, _rattle, _strain, split_frames

COUNTS = {"bulk_strain": 40, "rattle": 24, "vacancy": 16, "slab111": 12, "md600": 16, "md1200": 16}
SIZES = {"default": 1, "small": 2}

SCORECARD = {
    "name": "{name}",
    "constraints": [
        {"metric": "energy_rmse", "max": 20.0, "unit": "meV/atom"},
        {"metric": "force_rmse", "max": 120.0, "unit": "meV/Å"},
        {"metric": "force_rmse_max_group", "max": 200.0, "unit": "meV/Å"},
        {"metric": "md_failed_runs", "max": 0, "scale": 1, "unit": "count"},
        {"metric": "us_per_atom_step", "max": 2000.0, "unit": "µs/atom/step"},
    ],
    "composite": {"terms": [{"metric": "energy_rmse", "weight": 1.0, "scale": 20.0},
                            {"metric": "force_rmse", "weight": 1.0, "scale": 120.0}]},
    "noise_margin": 0.02,
    "stability": {
        "kind": "structures",
        "structures": {"config_types": ["bulk*", "md*"], "per_config_type": 1, "max_structures": 2, "min_atoms": 32},
        "runs": [{"name": "nvt900", "temperature_K": 900, "steps": 60, "timestep_fs": 2.0},
                 {"name": "npt600", "ensemble": "npt", "temperature_K": 600, "pressure_GPa": 0.0, "steps": 60,
                  "timestep_fs": 2.0}],
        "min_distance_factor": 0.6,
        "max_temperature_factor": 2.5,
        "max_volume_factor": 1.3,
        "reference": {"name": "emt"},
        "reference_force_rmse_meV_A": 500.0,
        "sample_every": 30,
    },
    "throughput": {"steps": 10, "warmup_steps": 2, "repeats": 3},
}

# Private like the holdout (`mlipilot validate`): longer, larger and broader than the scorecard, on the
# benchmark's own structures. MD starts at the snapshots' own temperatures (a cold start on a hot frame
# runs away with any calculator, EMT included: `init` checks the reference passes every run).
VALIDATION = {
    "name": "{name}_validation",
    "reference": {"name": "emt"},
    "checks": [
        {"name": "volume", "kind": "structure_volume", "max": 3.0,
         "params": {"config_types": ["bulk*", "vacancy"], "max_structures": 2}},
        {"name": "bulk_modulus", "kind": "structure_bulk_modulus", "max": 20.0,
         "params": {"config_types": ["bulk*", "vacancy"], "max_structures": 2}},
        # MD: 8x the scorecard's steps on 2x its atoms (EMT itself needs ~2 min for all three on one core)
        {"name": "md_nvt_hot", "kind": "structure_md", "min": 1.0,
         "params": {"config_types": ["md*"], "max_structures": 2, "min_atoms": 64, "temperature_K": 1200,
                    "steps": 500}},
        {"name": "md_npt", "kind": "structure_md", "min": 1.0,
         "params": {"config_types": ["md600"], "max_structures": 1, "min_atoms": 64, "ensemble": "npt",
                    "temperature_K": 900, "steps": 500}},
        {"name": "rdf_density_npt", "kind": "structure_rdf", "max": 0.15, "bounds": {"density_md1200": {"max": 3.0}},
         "params": {"config_types": ["md1200"], "max_structures": 1, "min_atoms": 64, "ensemble": "npt",
                    "temperature_K": 1200, "steps": 150, "equilibrate_steps": 50}},
    ],
}


def _lattice(symbols: list[str]) -> float:
    """Vegard's law over the elements' fcc lattice constants."""
    return float(np.mean([reference_states[atomic_numbers[s]]["a"] for s in symbols]))


def _random_alloy(elements: tuple[str, str], rng: np.random.Generator, repeat: int = 2) -> Atoms:
    x = rng.uniform(0.2, 0.8)
    n = 4 * repeat**3
    symbols = [elements[0] if rng.random() < x else elements[1] for _ in range(n)]
    atoms = bulk("X", "fcc", a=1.0, cubic=True).repeat(repeat)
    atoms.set_chemical_symbols(symbols)
    atoms.set_cell(atoms.cell.array * _lattice(symbols), scale_atoms=True)
    return atoms


def build_frames(elements: tuple[str, str] = ("Cu", "Au"), seed: int = 0, size: str = "small") -> list[Atoms]:
    rng = np.random.default_rng(seed)
    n = {k: max(3, v // SIZES[size]) for k, v in COUNTS.items()}
    frames = [_label(_rattle(_strain(_random_alloy(elements, rng), rng), rng, 0.03), "bulk_strain")
              for _ in range(n["bulk_strain"])]
    frames += [_label(_rattle(_random_alloy(elements, rng), rng, rng.uniform(0.04, 0.1)), "rattle")
               for _ in range(n["rattle"])]
    for _ in range(n["vacancy"]):
        atoms = _random_alloy(elements, rng)
        del atoms[int(rng.integers(len(atoms)))]
        frames.append(_label(_rattle(atoms, rng, 0.05), "vacancy"))
    for _ in range(n["slab111"]):
        slab = fcc111(elements[0], (2, 2, 4), a=_lattice(list(elements)), vacuum=6.0, periodic=True)
        slab.set_chemical_symbols([elements[int(rng.random() < 0.5)] for _ in slab])
        frames.append(_label(_rattle(slab, rng, 0.04), "slab111"))
    for temp in (600, 1200):
        atoms = _random_alloy(elements, rng)
        atoms.calc = EMT()
        thermalize_momenta(atoms, temperature_K=temp, rng=rng)
        dyn = Langevin(atoms, 2.0 * units.fs, temperature_K=temp, friction=0.02, fixcm=False, rng=rng)
        dyn.run(60)
        for _ in range(n[f"md{temp}"]):
            dyn.run(15)
            frames.append(_label(atoms.copy(), f"md{temp}"))
    return frames


def write_benchmark(out_dir: Path, elements: tuple[str, str] = ("Cu", "Au"), seed: int = 0,
                    size: str = "small") -> Path:
    """A complete user-style benchmark folder; returns it (pass it to `mlipilot init`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, frames in split_frames(build_frames(elements, seed, size), seed).items():
        write(out_dir / f"{split}.xyz", frames, format="extxyz")
    name = "".join(elements).lower() + "_emt"
    isolated = {}
    for el in elements:
        atom = Atoms(el, cell=[20.0] * 3)
        atom.calc = EMT()
        isolated[el] = round(float(atom.get_potential_energy()), 6)
    (out_dir / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": name,
        "description": f"Random fcc {'-'.join(elements)} alloys, vacancies, (111) slabs and MD snapshots; EMT labels.",
        "scorecard": "scorecard.yaml",
        "data": {"train": "train.xyz", "valid": "valid.xyz", "holdout": "holdout.xyz"},
        "isolated_atoms": isolated,
        "validation": "validation.yaml",
    }, sort_keys=False, allow_unicode=True))
    (out_dir / "validation.yaml").write_text(
        yaml.safe_dump({**VALIDATION, "name": f"{name}_validation"}, sort_keys=False, allow_unicode=True))
    card = yaml.safe_dump({**SCORECARD, "name": name}, sort_keys=False, allow_unicode=True)
    (out_dir / "scorecard.yaml").write_text(card)
    return out_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--elements", nargs=2, default=["Cu", "Au"], metavar=("A", "B"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="small", choices=sorted(SIZES))
    a = p.parse_args()
    print(f"benchmark folder: {write_benchmark(a.out_dir, tuple(a.elements), a.seed, a.size)}")


if __name__ == "__main__":
    main()
