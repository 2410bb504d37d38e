"""Which candidates to label: max_error (true force error vs the reference, Lang2MLIP), committee
(force disagreement of K models, DP-GEN's trust window), fps (farthest points on MACE invariant
descriptors, conditioned on the training set, with skmatter), random. Scores are per frame; the
choice honours per-config_type quotas."""

from __future__ import annotations

import fnmatch

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlipilot.data_actions.sampling import config_type


def _forces(calc: Calculator, a: Atoms) -> np.ndarray:
    b = a.copy()
    b.calc = calc
    return np.asarray(b.get_forces())


def max_error_scores(model: Calculator, frames: list[Atoms], ref_forces: list[np.ndarray | None]) -> list[float]:
    """max over atoms of |F_model - F_ref| (eV/Å); a frame without a label scores -inf (never chosen)."""
    out = []
    for a, ref in zip(frames, ref_forces):
        if ref is None:
            out.append(float("-inf"))
            continue
        try:
            out.append(float(np.linalg.norm(_forces(model, a) - ref, axis=1).max()))
        except Exception:
            out.append(float("inf"))  # the model cannot even evaluate it: the most informative frame
    return out


def committee_scores(models: list[Calculator], frames: list[Atoms]) -> list[float]:
    """DP-GEN's eps_F: max over atoms of the committee's force standard deviation (eV/Å)."""
    out = []
    for a in frames:
        try:
            f = np.stack([_forces(m, a) for m in models])  # (K, n, 3)
            dev = np.sqrt(np.mean(np.sum((f - f.mean(axis=0)) ** 2, axis=2), axis=0))  # per atom
            out.append(float(dev.max()))
        except Exception:
            out.append(float("inf"))
    return out


def frame_descriptor(model: Calculator, a: Atoms) -> np.ndarray:
    """Mean over atoms of the model's invariant descriptors (one row per frame)."""
    d = model.get_descriptors(a, invariants_only=True)
    return np.asarray(d).reshape(len(a), -1).mean(axis=0)


def fps_order(model: Calculator, frames: list[Atoms], training: list[Atoms], n: int) -> tuple[list[int], list[float]]:
    """n pool indices by farthest-point sampling that starts from the training set (skmatter's FPS
    with initialize = the training rows), with each pick's distance to what was chosen before."""
    from skmatter.sample_selection import FPS

    train = np.array([frame_descriptor(model, a) for a in training])
    pool = np.array([frame_descriptor(model, a) for a in frames])
    x = np.vstack([train, pool])
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)
    init = list(range(len(train)))
    n = min(n, len(pool))
    fps = FPS(initialize=init, n_to_select=len(train) + n).fit(x)
    picked = [int(i) - len(train) for i in fps.selected_idx_[len(train):]]
    hd = list(getattr(fps, "hausdorff_at_select_", np.zeros(len(fps.selected_idx_))))[len(train):]
    return picked, [float(h) for h in hd]


def choose(order: list[int], frames: list[Atoms], n: int, quotas: dict[str, int] | None) -> list[int]:
    """The first n of `order` whose config_type's quota (first matching glob) is not yet used up."""
    used: dict[str, int] = {}
    out = []
    for i in order:
        if len(out) >= n:
            break
        ct = config_type(frames[i])
        glob = next((g for g in (quotas or {}) if fnmatch.fnmatchcase(ct, g)), None)
        if glob is not None:
            if used.get(glob, 0) >= quotas[glob]:
                continue
            used[glob] = used.get(glob, 0) + 1
        out.append(i)
    return out
