"""Issue 32's calibration table for cu_props: does "accepted" mean "valid"? For each run (an agent on a
data seed): trials, whether a feasible model was reached, the accepted models, how many of the accepted
and feasible ones pass `mlipilot validate` (read from each trial's validation.json; run
`mlipilot validate --accepted RUN` first), which checks failed, and training seconds per trial.

    OMP_NUM_THREADS=1 python benchmarks/cu_props/calibration.py runs/expert0 runs/al0 runs/random0 [--json]

Runs are made with `mlipilot init cu_props DIR --data-seed S` and `mlipilot run --agent A --iterations 6`.
The property metrics' cost per trial against the rest of scoring is printed under the table (from each
trial's score timings).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mlipilot.ledger import Ledger
from mlipilot.records import interrupted
from mlipilot.run_config import load_run_config
from mlipilot.scorecard.result import ScoreResult


def run_row(root: Path) -> dict:
    cfg = load_run_config(root)
    trials = [t for t in Ledger(cfg.store / "ledger.jsonl").latest() if t.verdict and not interrupted(t)]
    accepted = [t for t in trials if t.verdict == "accepted"]
    feasible_accepted = [t for t in accepted if t.feasible]
    validated, failed_checks, unvalidated = [], {}, []
    for t in feasible_accepted:
        path = Path(t.trial_dir) / "validation.json"
        if not path.is_file():
            unvalidated.append(t.trial)
            continue
        v = json.loads(path.read_text())
        bad = [r["check"] for r in v.get("results", []) if not r.get("passed")]
        if not bad:
            validated.append(t.trial)
        failed_checks[t.trial] = sorted(set(bad))
    train = [float((t.wall or {}).get("train", 0) or 0) for t in trials if t.wall]
    props, rest = [], []
    for t in trials:
        s = ScoreResult.of(t)
        if s and "properties" in s.timings:
            props.append(s.timings["properties"])
            rest.append(s.timings.get("total", 0.0) - s.timings["properties"])
    return {"run": root.name, "agent": trials[-1].agent if trials else "-", "trials": len(trials),
            "feasible": any(t.feasible for t in trials), "accepted": [t.trial for t in accepted],
            "accepted_feasible": [t.trial for t in feasible_accepted], "validated": validated,
            "not_validated_yet": unvalidated, "checks_failed": failed_checks,
            "train_s": [round(x) for x in train],
            "properties_s": round(statistics.mean(props), 2) if props else None,
            "rest_of_scoring_s": round(statistics.mean(rest), 2) if rest else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = [run_row(r) for r in a.runs]
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'run':14} {'agent':8} {'trials':>6} {'feasible':>8}  {'accepted (feasible)':22} {'validated':>10}  "
          f"checks failed / train s")
    for r in rows:
        acc = f"{len(r['accepted'])} ({len(r['accepted_feasible'])})"
        val = f"{len(r['validated'])}/{len(r['accepted_feasible'])}" + ("*" if r["not_validated_yet"] else "")
        print(f"{r['run']:14} {r['agent']:8} {r['trials']:>6} {'yes' if r['feasible'] else 'no':>8}  {acc:22} {val:>10}  "
              f"{json.dumps(r['checks_failed'])} / {r['train_s']}")
    total = sum(len(r["accepted_feasible"]) for r in rows)
    passed = sum(len(r["validated"]) for r in rows)
    print(f"\naccepted and feasible: {total}; of them validated: {passed}"
          + (f" ({100 * passed / total:.0f} %)" if total else "") + "  (* some not validated yet)")
    for r in rows:
        if r["properties_s"] is not None:
            print(f"{r['run']}: property metrics {r['properties_s']} s per trial vs {r['rest_of_scoring_s']} s for the "
                  "rest of scoring")


if __name__ == "__main__":
    main()
