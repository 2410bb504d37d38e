"""The data actions' job functions: harness code run as submitit jobs on the run's executor, one
thread, with the scoring jobs' prologue (mlipilot.jobs._harness_job: no workspace code on the path,
the store's seal checked). Module level so submitit can pickle them; heavy imports inside."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from mlipilot.jobs import _as_result, _harness_job


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _calc(model_dir: str | None, reference: str | None, params: dict | None):
    if model_dir:
        from mlipilot.scorecard.evaluate import load_model

        return load_model(Path(model_dir))
    from mlipilot.scorecard.reference import calculator_class

    return calculator_class(reference)(**(params or {}))


@_as_result
def sample_job(out_dir: str, expected: dict, sealed_files: dict, starts_path: str, model_dir: str | None,
               reference: str | None, params: dict | None, method: str, temps: list, n_frames: int, steps: int,
               timestep_fs: float, amplitude: float | None, guards: dict, seed: int) -> dict:
    """Generate the candidate pool: writes pool.xyz in out_dir; returns per-frame stats and early stops."""
    started = _harness_job(str(Path(out_dir) / "result.json"), expected, sealed_files)
    from ase.io import read, write

    from mlipilot.data_actions.records import Method
    from mlipilot.data_actions.sampling import Guards, drop_non_finite, perturb, run_md

    starts = read(starts_path, index=":", format="extxyz")
    m = Method(method)
    calc = _calc(model_dir, reference, params)
    if m.is_md:
        frames, stats, stops = run_md(starts, calc, m, [tuple(t) for t in temps], n_frames, steps, timestep_fs,
                                      Guards(**guards), seed)
    else:
        frames, stats, stops = perturb(starts, m, n_frames, amplitude, seed, calc)
    frames, stats, stops = drop_non_finite(frames, stats, stops)  # no non-finite frame enters a pool
    write(Path(out_dir) / "pool.xyz", frames, format="extxyz")
    return {"started": started, "seconds": time.time() - started, "n": len(frames), "stats": stats, "stops": stops,
            "peak_rss_mb": _peak_rss_mb()}


@_as_result
def label_job(out_dir: str, expected: dict, sealed_files: dict, frames_path: str, reference: str,
              params: dict | None, cache_dir: str, max_new: int, max_cpu_s: float) -> dict:
    started = _harness_job(str(Path(out_dir) / "result.json"), expected, sealed_files)
    from ase.io import read

    from mlipilot.data_actions.labelling import label_frames

    frames = read(frames_path, index=":", format="extxyz")
    out = label_frames(frames, reference, params, Path(cache_dir), max_new, max_cpu_s)
    return {"started": started, "seconds": time.time() - started, **out, "peak_rss_mb": _peak_rss_mb()}


@_as_result
def selection_job(out_dir: str, expected: dict, sealed_files: dict, frames_path: str, strategy: str,
              model_dirs: list[str], ref_forces_path: str | None, training_path: str | None, n: int) -> dict:
    """Selection scores (max_error, committee) or an FPS order (fps) over the pool's frames."""
    started = _harness_job(str(Path(out_dir) / "result.json"), expected, sealed_files)
    import numpy as np
    from ase.io import read

    from mlipilot.data_actions import selection
    from mlipilot.scorecard.evaluate import load_model

    frames = read(frames_path, index=":", format="extxyz")
    models = [load_model(Path(d)) for d in model_dirs]
    order = None
    if strategy == "max_error":
        refs = json.loads(Path(ref_forces_path).read_text())
        scores = selection.max_error_scores(models[0], frames, [None if r is None else np.asarray(r) for r in refs])
    elif strategy == "committee":
        scores = selection.committee_scores(models, frames)
    else:  # fps
        training = read(training_path, index=":", format="extxyz")
        order, dists = selection.fps_order(models[0], frames, training, n)
        scores = [0.0] * len(frames)
        for i, d in zip(order, dists):
            scores[i] = d
    return {"started": started, "seconds": time.time() - started, "scores": scores, "order": order,
            "peak_rss_mb": _peak_rss_mb()}
