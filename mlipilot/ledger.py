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

from typing import TypeVar

from mlipilot.records import IterationEvent, RunEvent, TrialRecord

E = TypeVar("E")
RUN_EVENTS = ("run_start", "run_end", "run_error")
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
    """The file is read once (again only if another process changed it); an append writes one line
    chained to the head kept in memory, without reading the file again."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._cache: list[str] = []
        self._rows: list[dict] | None = None

    def _stat(self) -> tuple | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _lines(self) -> list[str]:
        stamp = self._stat()
        if stamp != self._stamp or stamp is None:
            text = self.path.read_text(encoding="utf-8") if stamp else ""
            self._cache = [line for line in text.splitlines() if line.strip()]
            self._rows = None
            self._stamp = stamp
        return self._cache

    def append(self, record) -> None:
        """Append a row (a record with `to_json`, or a dict), chained to the last line."""
        row = record.to_json() if hasattr(record, "to_json") else dict(record)
        lines = self._lines()
        prev = _line_hash(lines[-1]) if lines else GENESIS
        line = json.dumps({**{k: _clean(v) for k, v in row.items() if k != "prev"}, "prev": prev},
                          sort_keys=True, default=str)
        with open(self.path, "a+b") as f:
            if f.tell():
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # a line torn by a crash stays torn; ours starts on its own line
            f.write((line + "\n").encode("utf-8", "surrogatepass"))
            f.flush()
            os.fsync(f.fileno())
        self._cache = [*lines, line]
        if self._rows is not None:
            self._rows = [*self._rows, _parse(line)]
        self._stamp = self._stat()

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
        """Every row as JSON (copies), torn lines skipped."""
        lines = self._lines()
        if self._rows is None:
            self._rows = [r for r in map(_parse, lines) if r is not None]
        return copy.deepcopy(self._rows)

    def trials(self) -> list[dict]:
        """Latest row of each trial as JSON, in trial order."""
        return latest_trials(self.rows())

    # -- typed views: what modules read ------------------------------------------------------------
    def latest(self) -> list[TrialRecord]:
        """The latest record of each trial, typed, in trial order."""
        return [TrialRecord.from_json(r) for r in self.trials()]

    def events(self, kind: type[E]) -> list[E]:
        """The rows of one event type (IterationEvent, NoiseEvent, ValidationEvent, RunEvent), typed."""
        return events_of(self.rows(), kind)

    def next_trial_id(self) -> int:
        trials = self.latest()
        return (trials[-1].trial + 1) if trials else 1

    def incumbent(self) -> TrialRecord | None:
        return incumbent_of(self.latest())


def _parse(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None  # a line torn by a crash mid-write; the trial's other line survives
    if not isinstance(row, dict):
        return None
    row.pop("prev", None)
    return row


def events_of(rows: list[dict], kind: type[E]) -> list[E]:
    if kind is RunEvent:
        return [RunEvent.from_json(r) for r in rows if r.get("event") in RUN_EVENTS]
    return [kind.from_json(r) for r in rows if r.get("event") == kind.EVENT]


def incumbent_of(trials: list[TrialRecord]) -> TrialRecord | None:
    accepted = [t for t in trials if t.accepted]
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
        return self._ledger.rows()  # copies

    def trials(self) -> list[TrialRecord]:
        return [TrialRecord.from_json(r) for r in latest_trials(self.rows())]

    def iterations(self) -> list[IterationEvent]:
        return events_of(self.rows(), IterationEvent)

    def incumbent(self) -> TrialRecord | None:
        return incumbent_of(self.trials())
