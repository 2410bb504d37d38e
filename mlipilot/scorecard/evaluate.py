"""Score one trained model against a scorecard: smoke, accuracy, stability, throughput.

Harness code only: the model is rebuilt from its exported description by the installed mace-torch
(mlipilot.model_export), never unpickled and never through the workspace's code; one thread.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

from ase.io import read

from mlipilot.scorecard.result import ScoreResult
from mlipilot.scorecard.spec import ScorecardSpec

MD_STRUCTURES = "md_structures.xyz"  # in the private store when the benchmark names md_structures


class SmokeError(RuntimeError):
    """The model file is missing, does not load, or predicts non-finite values."""


def load_model(model_dir: Path, caps: dict | None = None):
    """A calculator over the model rebuilt from its exported description (model.json + weights.pt):
    the installed mace-torch builds it, the weights are read weights-only, nothing is unpickled."""
    import mace  # noqa: F401  -- mace must be imported before e3nn (mace-torch 0.3.16 pins e3nn 0.4.4)
    import torch
    from mlipilot.model_export import ExportError, rebuild
    from mlipilot.scorecard.calculator import ScoringCalculator

    torch.set_num_threads(1)
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise SmokeError(f"no exported model at {model_dir}")
    try:
        module, dtype = rebuild(model_dir, caps)
        return ScoringCalculator(models=[module], device="cpu", default_dtype=dtype)
    except ExportError as e:
        raise SmokeError(f"model does not load: {e}") from None
    except Exception as e:
        raise SmokeError(f"model does not load: {type(e).__name__}: {e}") from None


def md_start_frames(holdout: list, md_file: Path | None) -> list:
    """Where the scorecard's MD starts: the benchmark's own md_structures (flagged, so every frame
    is used) when it has them, else the holdout frames."""
    if md_file is None or not Path(md_file).is_file():
        return holdout
    from mlipilot.scorecard.structure_stability import EXPLICIT

    frames = read(md_file, index=":", format="extxyz")
    for f in frames:
        f.info[EXPLICIT] = True
    return frames


def smoke_check(calc, frame) -> None:
    probe = frame.copy()
    probe.calc = calc
    e, f = probe.get_potential_energy(), probe.get_forces()
    if not (math.isfinite(e) and all(math.isfinite(x) for x in f.ravel())):
        raise SmokeError("model predicts non-finite energy or forces on a holdout frame")


def score_model(model_dir: Path, spec: ScorecardSpec, holdout_path: Path,
                progress: Callable[[str], None] = print, caps: dict | None = None,
                cores: int | None = None) -> ScoreResult:
    """Every metric, the MD runs and the timings by phase; raises SmokeError when the model is unusable
    (or larger than `caps`, the run's size limits, allow). The independent MD runs go to `cores`
    forked workers at once (None: every core the job was given), one thread each."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlipilot.scorecard.accuracy import accuracy_metrics, predict
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS
    from mlipilot.scorecard.throughput import from_run, reference_rate, throughput_metrics

    t0 = time.perf_counter()
    calc = load_model(model_dir, caps)
    frames = read(holdout_path, index=":", format="extxyz")
    smoke_check(calc, frames[0])
    t1 = time.perf_counter()
    kind = STABILITY_KINDS[spec.stability.kind]
    md_frames = md_start_frames(frames, Path(holdout_path).with_name(MD_STRUCTURES))
    # the MD runs start first (forked, one core each): the holdout predictions run beside them, on the
    # core a shorter run leaves (Cu: the 32-atom ramp ends seconds before the 108-atom run)
    stability = kind.start(calc, spec, md_frames, cores)
    metrics: dict = accuracy_metrics(predict(calc, frames), frames, spec.metric_names())
    progress(f"  accuracy: E {metrics['energy_rmse']:.2f} meV/atom, F {metrics['force_rmse']:.1f} meV/Å"
             f" on {len(frames)} holdout frames")
    # the property metrics (small cells, a second or so) also run beside the MD children
    from mlipilot.scorecard.properties import PROPERTY_REFERENCE, property_metrics

    props, notes, prop_seconds = property_metrics(calc, spec, Path(holdout_path).with_name(PROPERTY_REFERENCE), progress)
    metrics.update(props)
    t2 = time.perf_counter()
    md_metrics, runs, tasks = stability(progress)
    metrics.update(md_metrics)
    t3 = time.perf_counter()
    tp = spec.throughput
    timed = [(t, runs[t.name]) for t in tasks if t.throughput and runs[t.name].ok]
    figures = next((f for t, r in timed if (f := from_run(r, len(t.start), t.protocol.timestep_fs, tp.steps))), None)
    source = "from the stability MD run"
    structure = kind.throughput_structure(spec, md_frames)
    if figures is None:  # no finished MD run on the throughput structure: time one of its own
        figures, source = throughput_metrics(calc, spec, structure), "separate run"
    metrics.update(figures)
    progress(f"  throughput: {metrics['steps_per_cpu_second']:.1f} steps/CPU-s, {metrics['steps_per_second']:.1f} steps/s"
             f" ({metrics['ns_per_day']:.2f} ns/day)"
             f" for {int(metrics['throughput_atoms'])} atoms, {metrics['us_per_atom_step']:.0f} µs/atom/step ({source})")
    if "throughput_ratio" in spec.metric_names():
        ref = reference_rate(spec, structure)
        metrics["throughput_ratio"] = metrics["steps_per_cpu_second"] / ref
        progress(f"  throughput_ratio: {metrics['throughput_ratio']:.2f} of the reference MACE's {ref:.1f} steps/CPU-s")
    t4 = time.perf_counter()
    timings = {"load_smoke": t1 - t0, "accuracy": t2 - t1 - prop_seconds, "properties": prop_seconds,
               "stability": t3 - t2, "throughput": t4 - t3, "total": t4 - t0}
    return ScoreResult(metrics, runs, timings, notes)
