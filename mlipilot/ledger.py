"""The append-only ledger (one JSON object per line) in the private store.

A trial is written twice: a `submitted` line before any job runs (so a crash loses nothing)
and its final record after the verdict. Readers keep the last line per trial.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a crash mid-write; the trial's other line survives
        return rows

    def trials(self) -> list[dict]:
        """Latest record of each trial, in trial order."""
        latest: dict[int, dict] = {}
        for row in self.rows():
            if "trial" in row:
                latest[int(row["trial"])] = row
        return [latest[k] for k in sorted(latest)]

    def next_trial_id(self) -> int:
        trials = self.trials()
        return (trials[-1]["trial"] + 1) if trials else 1

    def incumbent(self) -> dict | None:
        accepted = [t for t in self.trials() if t.get("verdict") == "accepted"]
        return accepted[-1] if accepted else None
