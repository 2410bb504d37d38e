"""The report plots composite against training frames and labels spent once a run added data."""

import pandas as pd

from mlipilot.records import TrialRecord
from mlipilot.report import make_figures
from mlipilot.results import COLUMNS


def _rows(agent: str, data: bool) -> list[dict]:
    rows = []
    for i, (comp, frames, spent) in enumerate([(4.0, None, None), (3.0, 160, 20), (2.0, 180, 40)]):
        row = {c: None for c in COLUMNS}
        row.update(agent=agent, seed=0, run=f"{agent}-0", iteration=i, trial=i + 1, verdict="accepted",
                   composite=comp, feasible=comp < 2.5, best_so_far=comp, best_so_far_feasible=comp < 2.5, feasible_so_far=comp < 2.5,
                   total_violation=0.0, job_failed=False, job_timeout=False, tokens_in=0, tokens_out=0, cost=0.0,
                   train_frames=frames if data else None, labels_spent=spent if data else None)
        rows.append(row)
    return rows


def test_report_draws_data_growth_only_when_data_was_added(tmp_path):
    with_data = make_figures(pd.DataFrame(_rows("al", True) + _rows("expert", False)), tmp_path / "a")
    assert with_data["data_growth"].read_bytes()[:4] == b"\x89PNG"
    without = make_figures(pd.DataFrame(_rows("expert", False)), tmp_path / "b")
    assert "data_growth" not in without


def test_trial_record_keeps_the_data_state_only_when_set():
    assert "train_frames" not in TrialRecord(trial=1).to_json()
    row = TrialRecord(trial=2, train_frames=180, labels_spent=40).to_json()
    assert row["train_frames"] == 180 and TrialRecord.from_json(row).labels_spent == 40
