"""Issue 22's acceptance table for cu_hot runs: agent, seed, trials, frames added, reference calls,
best composite, feasible, and the fraction of the validation heating ramp (108 atoms, 300 -> 3000 K,
3000 steps) the best model completes — read from `mlipilot validate` when it ran, else measured here
with `--ramp` (~2 min per model on one idle core).

    OMP_NUM_THREADS=1 python benchmarks/cu_hot/acceptance_table.py runs/al0 runs/ex0 [--ramp]

Measured (2026-11-30, 2 loaded cores, `mlipilot init cu_hot DIR --data-seed S`, local executor, bwrap;
trials count the harness's baseline; ramp: this script's ramp on the model named):

    agent   data seed  trials  frames added (best/all)  reference calls  composite  feasible  ramp
    al      0          3       99 / 106                 139              1.7386     yes       1.0 (trial 2)
    al      1          5       104 / 117                160              1.8873     yes       1.0 (trials 2, 4)
    al      2          2 (*)   100 / 100                100              1.7865     yes       1.0 (trial 2)
    expert  1          3       0                        0                4.9380     no        -
    expert  0          6 (e2)  0                        0                4.3302     no        0.95 (e2)

al's first trial (the expert's options + 100 frames of EMT MD heated 2000 -> 3500 K) was feasible on every
seed; seed 0 then finished on its own (accurate ratio 0.90 at 2000/2500 K, scorecard met); (*) seed 2
was stopped after that trial. `mlipilot validate --best` on seed 0 (trial 2) passed md_nvt1300_500 (1178 s)
and was stopped during its ramp (10 checks take > 1 h on a loaded 2-core box). The expert's same options without the frames: force_rmse_hot* +111 %
over its bound and nvt3500_108 failed (seed 1).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mlipilot.data_commits import frames_at
from mlipilot.jobs import MODEL_DIR
from mlipilot.ledger import Ledger
from mlipilot.records import interrupted
from mlipilot.run_config import load_run_config

RAMP = "completed_ramp300-3000K"


def ramp_from_validation(trial_dir: Path) -> float | None:
    path = trial_dir / "validation.json"
    if not path.is_file():
        return None
    for r in json.loads(path.read_text()).get("results", []):  # mlipilot.validation.base.CheckResult
        if str(r.get("quantity", "")).startswith("completed_ramp"):
            return r.get("value")
    return None


def measure_ramp(model_dir: Path) -> tuple[float, str]:
    from mlipilot.scorecard.evaluate import load_model
    from mlipilot.md.integrators import fcc_cell
    from mlipilot.validation.dynamics import _langevin_run

    p = {"steps": 3000, "timestep_fs": 2.0, "friction": 0.02, "seed": 0, "min_distance_A": 1.8,
         "max_temperature_factor": 2.0}
    good, why = _langevin_run(fcc_cell("Cu", 3.59, 3), load_model(model_dir), (300.0, 3000.0), p)
    return good / p["steps"], why


def row(run: Path, ramp: bool) -> dict:
    cfg = load_run_config(run)
    ledger = Ledger(cfg.store / "ledger.jsonl")
    trials = [t for t in ledger.latest() if not interrupted(t) and t.status == "finished"]
    agents = sorted({str(t.agent) for t in trials if t.agent not in (None, "", "human", "harness")})
    calls = sum(int(r.get("calls") or 0) for r in ledger.rows()
                if r.get("event") == "data_action" and r.get("action") == "label")
    best = ledger.incumbent()
    added = frames_at(cfg.root, best.commit) if best else {}
    out = {"run": run.name, "agent": "+".join(agents) or "-", "trials": len(trials),
           "frames_added_best": sum(n for name, n in added.items() if name != "data/train.xyz"),
           "frames_added_all": sum(int(r.get("added") or 0) for r in ledger.rows()
                                   if r.get("event") == "data_action" and r.get("action") == "add"),
           "reference_calls": calls, "composite": best and round(best.composite, 4),
           "feasible": bool(best and best.feasible), "best_trial": best and best.trial}
    if best:
        frac = ramp_from_validation(Path(best.trial_dir))
        detail = "mlipilot validate"
        if frac is None and ramp:
            frac, detail = measure_ramp(Path(best.trial_dir) / MODEL_DIR)
        out["ramp_fraction"], out["ramp_detail"] = frac, detail if frac is not None else "not measured"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--ramp", action="store_true", help="measure the ramp where `mlipilot validate` did not")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for run in a.runs:
        print(json.dumps(row(run.resolve(), a.ramp)), flush=True)


if __name__ == "__main__":
    main()
