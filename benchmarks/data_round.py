"""Cost of one data round on Cu: sample -> select -> label -> add, each a real submitit job (local
executor, one thread), compared with one baseline training of the shipped workspace.

Sampling: Langevin MD driven by the incumbent model from 2 training structures at 4 temperatures,
200 candidate frames; selection of 20 (fps by default); EMT labels; the data commit. Prints, per
action, wall seconds, frames per second, reference calls and the peak memory (RSS) of its job.

    OMP_NUM_THREADS=1 python benchmarks/data_round.py [--strategy fps|committee|max_error|random]
                                                       [--no-baseline] [--steps 250]

With --no-baseline the incumbent is the shipped trained test model (tests/data/cu_fix.model) put in
place as trial 0, and no training is timed.

Measured 2026-11-30 on the 2-core machine shared with other jobs (load average ~12), fps selection:
sample 138.5 s (200 frames from 8 runs of 250 steps, 1.4 frames/s, job peak RSS 553 MB), select 33.4 s
(MACE descriptors of 200 candidates + 146 training frames, 605 MB: the largest job), label 3.2 s
(20 EMT calls, 96 MB), add 0.3 s; the round 175 s against 198 s for one baseline training
(trial wall 299 s with scoring): 0.88 x a training. With the trained test model as incumbent
(--no-baseline, load ~12): sample 361 s, select 82 s, label 6 s, add 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import mlipilot.rundir as rundir  # noqa: E402
from mlipilot.data_actions import DataActions  # noqa: E402
from mlipilot.data_actions.brief import data_state  # noqa: E402
from mlipilot.ledger import Ledger  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategy", default="fps")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--source", default="md1500")
    p.add_argument("--keep", action="store_true", help="keep the run directory")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlipilot-data-round-"))
    rundir.TEMPLATE += "\n[data]\nlabel_budget = {{ calls = 400, cpu_seconds = 3600 }}\n"
    t0 = time.time()
    root = rundir.init_run("cu_emt", work / "run", executor="local", progress=lambda s: None)
    cfg = load_run_config(root)
    print(f"init: {time.time() - t0:.1f} s ({root})")
    baseline = None
    if a.no_baseline:
        from mlipilot.model_export import export

        trial_dir = cfg.store / "trials" / "0000"
        export(ROOT / "tests" / "data" / "cu_fix.model", trial_dir / "model")
        Ledger(cfg.store / "ledger.jsonl").append({"trial": 0, "status": "finished", "verdict": "accepted",
                                                   "trial_dir": str(trial_dir), "metrics": {},
                                                   "hypothesis": "benchmark: the shipped test model as incumbent"})
    else:
        from mlipilot.trial import TrialRunner

        t = time.time()
        row = TrialRunner(cfg, progress=lambda s: None).run("baseline: the shipped workspace")
        baseline = {"wall": time.time() - t, **{k: row["wall"].get(k) or 0.0 for k in ("train", "score")}}
        print(f"baseline trial: {row['verdict']} ({row['reason'][:120]}), train {baseline['train']:.1f} s, "
              f"score {baseline['score']:.1f} s, wall {baseline['wall']:.1f} s")
        if row["verdict"] != "accepted":
            raise SystemExit("the baseline trial has no model to sample with — see its reason above")
    acts = DataActions(cfg, progress=lambda s: None)
    rows = []

    def timed(name, fn, frames_of):
        t = time.time()
        out = fn()
        wall = time.time() - t
        n = frames_of(out)
        rows.append((name, wall, n, out))
        return out

    pool = timed("sample", lambda: acts.sample(a.source, driver="incumbent", method="langevin",
                                                temperatures=[1000, 1500, 2000, 2500], structures=2,
                                                n_frames=200, steps=a.steps), lambda o: o.n)
    sel = timed("select", lambda: acts.select(pool, a.strategy, n=20), lambda o: pool.n)
    lab = timed("label", lambda: acts.label(sel), lambda o: o.n)
    timed("add", lambda: acts.add(lab), lambda o: o.frames_added)
    print(f"\npool: {pool.summary()}")
    print(f"selection: {sel.summary()}")
    print(f"\n{'action':8} {'wall s':>8} {'frames':>7} {'frames/s':>9} {'ref calls':>9} {'job RSS MB':>10}")
    calls = {"select": sel.labels_spent, "label": lab.calls}
    rss = {"sample": pool.peak_rss_mb, "select": sel.peak_rss_mb, "label": lab.peak_rss_mb}
    for name, wall, n, _ in rows:
        print(f"{name:8} {wall:8.1f} {n:7d} {n / wall if wall else 0:9.1f} {calls.get(name, 0):9d} "
              f"{rss.get(name, float('nan')):10.0f}")
    total = sum(r[1] for r in rows)
    print(f"{'round':8} {total:8.1f}")
    if baseline:
        print(f"one baseline training: {baseline['train']:.1f} s (trial wall {baseline['wall']:.1f} s): "
              f"the round costs {total / baseline['train']:.2f} x a training")
    print(data_state(acts))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(str(work / "run") + ".mlipilot-store", ignore_errors=True)


if __name__ == "__main__":
    main()
