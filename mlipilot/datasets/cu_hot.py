"""Hot Cu: the cu_emt training data (up to 1500 K) with a holdout that also holds hot liquid Cu.

The benchmark where data matters (issue 22): train and valid are exactly cu_emt's for the same
seed and size, so no option the agent edits shows the model a configuration above 1500 K; the
private holdout adds EMT Langevin frames at 2000, 2500 and 3000 K (config_type hot<T>), which the
scorecard constrains on their own. Only new labelled data (sample, label, add) covers that regime.

Deterministic for a given (seed, size): cu_emt's frames and split first, then the hot frames from
their own numpy Generator, so the base frames never depend on the hot ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from mlipilot.datasets import cu_emt

HOT_TEMPERATURES_K = (2000, 2500, 3000)
HOT_FRAMES = 8  # per temperature for size="default"; size="small" divides by 4 (at least 2)
HOT_STREAM = 22  # the hot frames' Generator is seeded (seed, HOT_STREAM): independent of cu_emt's draws
SIZES = cu_emt.SIZES


def hot_frames(seed: int, size: str = "default") -> list[Atoms]:
    """EMT Langevin snapshots of 32 Cu atoms at each hot temperature, config_type hot<T>."""
    rng = np.random.default_rng([seed, HOT_STREAM])
    n = max(2, HOT_FRAMES // SIZES[size])
    frames = []
    for temp in HOT_TEMPERATURES_K:
        for atoms in cu_emt._md_snapshots(n, float(temp), rng):
            atoms.info["config_type"] = f"hot{temp}"
            frames.append(atoms)
    return frames


def generate(out_dir: Path, seed: int = 0, size: str = "default", verbose: bool = True) -> dict[str, Path]:
    """Write train.xyz, valid.xyz and holdout.xyz under out_dir; return their paths."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = cu_emt.split_frames(cu_emt.build_frames(seed, size), seed)
    splits["holdout"] = splits["holdout"] + hot_frames(seed, size)  # hot frames: holdout only
    paths = {}
    for name, frames in splits.items():
        paths[name] = out_dir / f"{name}.xyz"
        write(paths[name], frames, format="extxyz")
    if verbose:
        print("cu_hot: cu_emt's train/valid; the holdout adds hot frames "
              + ", ".join(f"hot{t}" for t in HOT_TEMPERATURES_K))
        cu_emt._print_summary(splits, time.perf_counter() - t0)
    return paths


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="default", choices=sorted(SIZES))
    a = p.parse_args()
    generate(a.out_dir, a.seed, a.size)
