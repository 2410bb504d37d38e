"""Scoring wall time by phase with the MD runs on one core vs on every core the job was given, on the
shipped trained Cu model (tests/data/cu_fix.model) and the shipped scorecard; checks the metrics agree.

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/scoring_cores.py [--model M.model] [--holdout H.xyz] [--repeats 2]

Prints one row per (cores, repeat): load_smoke, accuracy, stability, throughput, total (s), the
throughput figure (steps/CPU-s) and whether every MD metric equals the one-core run's; then the MD runs'
CPU seconds: their sum (the stability phase on one free core) and the longest (on enough free cores) —
a load-independent bound on the gain. Numbers, not asserts: on a loaded machine the second core is not
free and the wall-clock gain shrinks."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from mlipilot.md.pool import job_cores  # noqa: E402
from mlipilot.scorecard.evaluate import score_model  # noqa: E402
from mlipilot.scorecard.spec import load_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "tests" / "data" / "cu_fix.model")
    ap.add_argument("--holdout", type=Path, help="default: the Cu benchmark's default data, seed 0 (generated)")
    ap.add_argument("--scorecard", type=Path, default=ROOT / "scorecards" / "cu_emt.yaml")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    from mlipilot_testkit import exported

    holdout = args.holdout
    if holdout is None:
        from mlipilot.datasets import cu_emt

        holdout = cu_emt.generate(Path(tempfile.mkdtemp()), seed=0, size="default", verbose=False)["holdout"]
    model, spec = exported(args.model), load_spec(args.scorecard)
    md_keys = None
    print(f"{'cores':>5} {'load':>6} {'acc':>6} {'md':>6} {'tput':>6} {'total':>6} {'steps/CPU-s':>11}  same MD metrics")
    base = None
    for rep in range(args.repeats):
        for cores in sorted({1, job_cores()}):
            r = score_model(model, spec, holdout, progress=lambda s: None, cores=cores)
            md = {k: v for k, v in r.metrics.items() if k.startswith("md_")}
            md_keys = md_keys or md
            base = base or {k: run.to_json() for k, run in r.md_runs.items()}
            same = md == md_keys and {k: run.to_json() for k, run in r.md_runs.items()} == base
            t = r.timings
            print(f"{cores:>5} {t['load_smoke']:6.1f} {t['accuracy']:6.1f} {t['stability']:6.1f} {t['throughput']:6.1f}"
                  f" {t['total']:6.1f} {r.metrics['steps_per_cpu_second']:11.1f}  {same}", flush=True)
            cpu = {k: run.figures.get("run_cpu_s", 0.0) for k, run in r.md_runs.items()}
            print(f"      MD CPU s: {', '.join(f'{k} {v:.1f}' for k, v in cpu.items())}; sum {sum(cpu.values()):.1f},"
                  f" longest {max(cpu.values()):.1f}", flush=True)


if __name__ == "__main__":
    main()
