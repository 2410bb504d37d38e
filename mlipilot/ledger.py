"""The append-only ledger (one JSON object per line) in the private store.

A trial is written twice: a `submitted` line before any job runs (so a crash loses nothing)
and its final record after the verdict. Readers keep the last line per trial.

Each line carries `prev`, the sha256 of the line before it, so an edited, inserted or deleted row
breaks the chain and `verify()` names the first bad line. Lines written before the chain existed
(no `prev`) are accepted only as a prefix.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

from mlipilot.records import TrialRecord
from mlipilot.sanitize import strip_controls

GENESIS = "0" * 64


def _clean(value):
    """Every string of a record without terminal controls: rows quote agents' text and job logs, and
    `mlipilot status` and agents' history show them."""
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8", "surrogatepass")).hexdigest()


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def append(self, record: dict) -> None:
        lines = self._lines()
        prev = _line_hash(lines[-1]) if lines else GENESIS
        line = json.dumps({**{k: _clean(v) for k, v in record.items() if k != "prev"}, "prev": prev},
                          sort_keys=True, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            if self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
                f.write("\n")  # a line torn by a crash stays torn; ours starts on its own line
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def verify(self) -> str | None:
        """None when every row chains to the one before it, else where the chain breaks."""
        lines = self._lines()
        chained = False
        for i, line in enumerate(lines):
            try:
                prev = json.loads(line).get("prev")
            except (json.JSONDecodeError, AttributeError):
                continue  # a line torn by a crash mid-write; the next line still chains to it
            if prev is None and not chained:
                continue  # rows from before the chain
            chained = True
            want = _line_hash(lines[i - 1]) if i else GENESIS
            if prev != want:
                return (f"{self.path}: line {i + 1} does not follow line {i} (an edited, inserted or deleted row) "
                        "— the ledger was changed outside MLIPilot; restore it from a backup")
        return None

    def rows(self) -> list[dict]:
        rows = []
        for line in self._lines():
            try:
                rows.append({k: v for k, v in json.loads(line).items() if k != "prev"})
            except (json.JSONDecodeError, AttributeError):
                continue  # a line torn by a crash mid-write; the trial's other line survives
        return rows

    def trials(self) -> list[dict]:
        """Latest record of each trial, in trial order."""
        return latest_trials(self.rows())

    def latest(self) -> list[TrialRecord]:
        """The same, typed."""
        return [TrialRecord.from_json(r) for r in self.trials()]

    def next_trial_id(self) -> int:
        trials = self.trials()
        return (trials[-1]["trial"] + 1) if trials else 1

    def incumbent(self) -> dict | None:
        accepted = [t for t in self.trials() if t.get("verdict") == "accepted"]
        return accepted[-1] if accepted else None


def latest_trials(rows: list[dict]) -> list[dict]:
    """The latest record of each trial (a trial is written when submitted and again when decided),
    in trial order."""
    latest: dict[int, dict] = {}
    for row in rows:
        if "trial" in row:
            latest[int(row["trial"])] = row
    return [latest[k] for k in sorted(latest)]


class History:
    """What an agent may know of the ledger: copies of its rows, never the ledger itself."""

    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def rows(self) -> list[dict]:
        return copy.deepcopy(self._ledger.rows())

    def trials(self) -> list[dict]:
        return latest_trials(self.rows())

    def incumbent(self) -> dict | None:
        accepted = [t for t in self.trials() if t.get("verdict") == "accepted"]
        return accepted[-1] if accepted else None
