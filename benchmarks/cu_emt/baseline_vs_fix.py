"""Cu EMT: the shipped baseline is infeasible, a known fix is accepted, a worse edit is rejected.

Runs the real harness (local submitit executor, real mace-torch training and scoring) and prints,
per trial: verdict, key metrics, training time per epoch (from mace-torch's epoch timestamps),
scoring time, and harness overhead (trial wall time minus training and scoring) as a % of the trial.

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/baseline_vs_fix.py [--size small|default]
"""

import argparse
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402

# (hypothesis, {config key: new value}) applied to train/config.yaml in order
SCRIPT = [
    ("baseline: the shipped mace-torch defaults", {}),
    ("re-weight the loss towards energies (energy_weight 100, forces_weight 10) and train 10 epochs",
     {"energy_weight": "100.0", "forces_weight": "10.0", "max_num_epochs": "10"}),
    ("stop after 3 epochs to save training time", {"max_num_epochs": "3"}),
]


def set_config(config: Path, updates: dict[str, str]) -> None:
    text = config.read_text()
    for key, value in updates.items():
        text = re.sub(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
    config.write_text(text)


def seconds_per_epoch(trial_dir: Path) -> float:
    log = (trial_dir / "train.log").read_text(errors="replace")
    stamps = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f")
              for t in re.findall(r"^(\S+ \S+) INFO: (?:Initial|Epoch \d+):", log, re.M)]
    return (stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1) if len(stamps) > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="default")
    p.add_argument("--executor", default="local")
    a = p.parse_args()
    run = Path(tempfile.mkdtemp(prefix="mlipilot-bench-")) / "run"
    init_run("cu_emt", run, executor=a.executor, size=a.size, data_seed=0, progress=lambda s: None)
    trial = TrialRunner(load_run_config(run), progress=lambda s: None)
    records = []
    for hypothesis, updates in SCRIPT:
        set_config(run / "train" / "config.yaml", updates)
        records.append(trial.run(hypothesis, agent="benchmark-script"))
    print(f"{'trial':>5} {'verdict':9} {'feasible':8} {'E meV/at':>8} {'F meV/Å':>8} {'MDfail':>6} "
          f"{'train s':>7} {'s/epoch':>7} {'score s':>7} {'total s':>7} {'overhead':>8}")
    for r in records:
        w, m = r["wall"], r.get("metrics") or {}
        overhead = w["total"] - w.get("train", 0) - w.get("score", 0)
        print(f"{r['trial']:>5} {r['verdict']:9} {str(r['feasible']):8} {m.get('energy_rmse', float('nan')):8.2f} "
              f"{m.get('force_rmse', float('nan')):8.1f} {m.get('md_failed_runs', float('nan')):6.0f} "
              f"{w.get('train', 0):7.1f} {seconds_per_epoch(Path(r['trial_dir'])):7.1f} "
              f"{w.get('score', 0):7.1f} {w['total']:7.1f} {100 * overhead / w['total']:7.1f}%")
        print(f"      {r['hypothesis'][:90]}\n      -> {r['reason'][:150]}")
    print(f"run directory: {run}")


if __name__ == "__main__":
    main()
