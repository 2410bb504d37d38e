"""Make the tiny "foundation" model MLIPilot ships for tests and the README's fine-tuning example.

No real MACE foundation checkpoint (MACE-MP-0, MACE-OMAT, ...) ships in any package and none can be
downloaded here, so this trains a small multi-element MACE on ASE's EMT for seven fcc metals (bulk at
several lattice strains, rattled, random binary alloys, vacancies; 2 atoms to 32), the same way a user
would point `mlipilot init --foundation NAME=PATH` at a downloaded MACE-MP-0 file. Deterministic for a
given seed; takes a few minutes on one CPU thread:

    OMP_NUM_THREADS=1 python benchmarks/foundation/make_tiny_foundation.py   # -> tiny_emt_fcc.model
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

ELEMENTS = ("Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")
HERE = Path(__file__).resolve().parent


def frames(seed: int = 0, n_per_element: int = 24, n_alloys: int = 60) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []

    def label(a: Atoms, kind: str) -> Atoms:
        a.calc = EMT()
        a.info["REF_energy"] = a.get_potential_energy()
        a.arrays["REF_forces"] = a.get_forces()
        a.info["config_type"] = kind
        a.calc = None
        return a

    for el in ELEMENTS:
        for i in range(n_per_element):
            a = bulk(el, "fcc", cubic=True).repeat((2, 2, 2) if i % 3 == 0 else (1, 1, 2))
            a.set_cell(a.cell * (1 + rng.uniform(-0.06, 0.06)), scale_atoms=True)
            if i % 4 == 3 and len(a) > 8:
                del a[int(rng.integers(len(a)))]
            a.rattle(stdev=float(rng.uniform(0.02, 0.15)), seed=int(rng.integers(1 << 30)))
            out.append(label(a, f"bulk_{el}"))
    for i in range(n_alloys):
        pair = rng.choice(ELEMENTS, size=2, replace=False)
        a = bulk(pair[0], "fcc", cubic=True).repeat((2, 2, 2))
        symbols = rng.choice(pair, size=len(a))
        a.set_chemical_symbols(symbols)
        a.set_cell(a.cell * (1 + rng.uniform(-0.04, 0.06)), scale_atoms=True)
        a.rattle(stdev=float(rng.uniform(0.02, 0.12)), seed=int(rng.integers(1 << 30)))
        out.append(label(a, "alloy"))
    return out


def isolated_energies() -> dict[int, float]:
    from ase.data import atomic_numbers

    e0 = {}
    for el in ELEMENTS:
        a = Atoms(el, cell=[20, 20, 20], pbc=False)
        a.calc = EMT()
        e0[atomic_numbers[el]] = float(a.get_potential_energy())
    return e0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE / "tiny_emt_fcc.model")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    data = frames(a.seed)
    rng = np.random.default_rng(a.seed + 1)
    idx = rng.permutation(len(data))
    n_valid = len(data) // 10
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "train.xyz", [data[i] for i in idx[n_valid:]], format="extxyz")
        write(tmp / "valid.xyz", [data[i] for i in idx[:n_valid]], format="extxyz")
        cmd = [sys.executable, "-m", "mace.cli.run_train", "--name", "foundation", "--model", "MACE",
               "--train_file", str(tmp / "train.xyz"), "--valid_file", str(tmp / "valid.xyz"),
               "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", str(isolated_energies()),
               "--num_channels", "16", "--max_L", "1", "--max_ell", "2", "--correlation", "2",
               "--num_interactions", "2", "--r_max", "5.0", "--batch_size", "8", "--lr", "0.01",
               "--max_num_epochs", str(a.epochs), "--energy_weight", "10", "--forces_weight", "100",
               "--default_dtype", "float32", "--device", "cpu", "--seed", str(a.seed),
               "--model_dir", str(tmp), "--checkpoints_dir", str(tmp / "ck"), "--results_dir", str(tmp / "res"),
               "--log_dir", str(tmp / "logs")]
        subprocess.run(cmd, check=True)
        a.out.write_bytes((tmp / "foundation.model").read_bytes())
    print(f"wrote {a.out} ({a.out.stat().st_size} bytes; {len(data)} EMT frames of {', '.join(ELEMENTS)})")


if __name__ == "__main__":
    main()
