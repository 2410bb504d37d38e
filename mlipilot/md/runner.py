"""The one checked MD loop: consume an iterator of MDSteps (any integrator, or a batched driver's
replica), run the step checks on their due steps, stop at the first reason, and say how far it got.

A model that crashes the integrator is unstable, not a harness bug: the exception becomes the reason.
Integrator time (CPU and wall) is measured apart from the checks' time, so a run doubles as the
throughput measurement.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from mlipilot.md.checks import StepCheck
from mlipilot.md.integrators import MDStep
from mlipilot.md.result import MDRun


def run_checked(steps: Iterable[MDStep], checks: Sequence[StepCheck], warmup: int = 5) -> MDRun:
    """Run to the end or the first failed check. The MDRun's `figures` hold every check's figures,
    `completed_steps` (steps that passed every check) and the integrator's `cpu_s_per_step` /
    `wall_s_per_step` over the steps after `warmup` (absent when too few ran), and `run_cpu_s`, the
    whole run's CPU time, checks included."""
    reason, reached, completed = None, 0, 0
    start_cpu = time.process_time()
    cpu = wall = 0.0
    timed = 0
    it = iter(steps)
    try:
        while True:
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                s = next(it)
            except StopIteration:
                break
            if s.step > warmup:
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
                timed += 1
            reached = s.step
            for c in checks:
                if s.step % c.every == 0 or (c.at_end and s.step == s.total):
                    reason = c.check(s)
                    if reason:
                        break
            if reason:
                break
            completed = s.step
    except Exception as e:  # a model that crashes the integrator is unstable, not a harness bug
        reason = f"MD raised {type(e).__name__}: {e} at step {reached + 1}"
    figures: dict[str, float] = {"completed_steps": float(completed), "run_cpu_s": time.process_time() - start_cpu}
    for c in checks:
        figures.update(c.figures())
    if timed:
        figures.update(cpu_s_per_step=cpu / timed, wall_s_per_step=wall / timed, timed_steps=float(timed))
    return MDRun(reason is None, reached, reason, figures=figures)
