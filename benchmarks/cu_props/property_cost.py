"""What the property metrics cost per trial against the rest of scoring (issue 32: ≤ 10 %): scores one
exported model with a cu_props run's scorecard and sealed reference, and prints the phases' seconds.

    OMP_NUM_THREADS=1 python benchmarks/cu_props/property_cost.py RUN [MODEL_DIR]

RUN: a run made by `mlipilot init cu_props RUN`; MODEL_DIR: an exported model (default: the run's best
trial's). The property metrics run beside the forked MD children, so on 2 cores their wall time is
mostly hidden; their CPU seconds are printed too (the process's own, the MD children excluded).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mlipilot.jobs import MODEL_DIR
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.scorecard.evaluate import load_model, score_model
from mlipilot.scorecard.properties import PROPERTY_REFERENCE, property_metrics
from mlipilot.scorecard.spec import load_spec


def main() -> None:
    cfg = load_run_config(Path(sys.argv[1]))
    spec = load_spec(cfg.store / "scorecard.yaml")
    if len(sys.argv) > 2:
        model = Path(sys.argv[2])
    else:
        best = Ledger(cfg.store / "ledger.jsonl").incumbent()
        model = Path(best.trial_dir) / MODEL_DIR
    calc = load_model(model)
    property_metrics(calc, spec, cfg.store / PROPERTY_REFERENCE, progress=lambda s: None)  # warm: the EOS cache dies
    calc = load_model(model)                                                           # with its calculator
    c0, t0 = time.process_time(), time.perf_counter()
    property_metrics(calc, spec, cfg.store / PROPERTY_REFERENCE, progress=print)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    result = score_model(model, spec, cfg.store / "holdout.xyz", progress=lambda s: None)
    t = result.timings
    rest = t["total"] - t.get("properties", 0.0)
    print(f"property metrics alone: {wall:.2f} s wall, {cpu:.2f} CPU-s")
    print(f"in scoring: properties {t.get('properties', 0.0):.2f} s, the rest of scoring {rest:.2f} s "
          f"({100 * t.get('properties', 0.0) / rest:.1f} %); phases: "
          + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))


if __name__ == "__main__":
    main()
