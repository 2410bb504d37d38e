"""The brief small agents read: what fails in physical units (value, bound, unit, factor; failed MD
with step and reason), a table of the configurations already tried and of iterations without an
experiment, and static text first so a server's prompt cache reuses it across iterations."""

from __future__ import annotations

from mlipilot.context import build_brief
from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import WorkspaceTools

BASELINE = {"trial": 1, "status": "finished", "verdict": "accepted", "composite": 13.3, "feasible": False,
            "hypothesis": "baseline", "knobs": {"energy_weight": 1.0, "forces_weight": 100.0},
            "metrics": {"energy_rmse": 256.0, "force_rmse": 38.6, "md_failed_runs": 1.0, "steps_per_cpu_second": 17.0,
                        "md_runs": {"ramp_32": {"ok": False, "steps": 41, "reason": "atoms 1.70 Å apart at step 41"},
                                    "nvt1000_32": {"ok": True, "steps": 40, "reason": None}}},
            "violations": {"energy_rmse": 7.53, "md_failed_runs": 1.0}}
REJECTED = {**BASELINE, "trial": 2, "verdict": "rejected", "composite": 20.0, "hypothesis": "more channels",
            "knobs": {"energy_weight": 1.0, "forces_weight": 100.0, "num_channels": 64},
            "metrics": {"energy_rmse": 400.0, "force_rmse": 50.0}}


def test_what_fails_tried_table_and_static_prefix(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", sandbox="none", progress=lambda s: None)
    cfg = load_run_config(root)
    ledger = Ledger(cfg.store / "ledger.jsonl")
    for row in (BASELINE, REJECTED):
        ledger.append(row)
    ledger.append({"event": "iteration", "iteration": 3, "outcome": "stop", "text": "nothing under train/ changed"})
    tools = WorkspaceTools(cfg)
    b2, b3 = build_brief(cfg, tools, 2, 6), build_brief(cfg, tools, 3, 6)
    # the fast scorecard: energy_rmse <= 30 meV/atom; the baseline's 256 is 8.5x that
    assert "- energy_rmse 256 meV/atom > 30 (8.5×)" in b2
    assert "- MD ramp_32 failed after 41 steps: atoms 1.70 Å apart at step 41" in b2
    assert "trial | energy_weight | forces_weight | num_channels | verdict" in b2
    assert "2 | 1.0 | 100.0 | 64 | rejected | 400 | 50" in b2 and "1 | 1.0 | 100.0 | - | accepted" in b2
    assert "iteration 3: no experiment (stop): nothing under train/ changed" in b2
    # everything before the iteration line is byte-identical from one iteration to the next
    static = b2.split("# Iteration 2 of 6")[0]
    assert len(static) > 500 and b3.startswith(static) and "## Scorecard" in static
