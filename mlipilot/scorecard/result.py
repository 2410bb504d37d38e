"""What one scoring job returns, typed: scalar metrics (what scorecards gate and tables show), the
MD runs (one per stability run, with why it stopped) and the timings by phase, kept apart so no
reader has to filter a mixed dict. `to_json`/`from_json` keep the flat shape older ledgers and
score files hold (`md_runs` and `score_seconds` beside the scalars)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlipilot.md.result import MDRun

MD_RUNS_KEY = "md_runs"
TIMINGS_KEY = "score_seconds"
NOTES_KEY = "score_notes"


@dataclass(frozen=True)
class ScoreResult:
    metrics: dict[str, float | None] = field(default_factory=dict)
    md_runs: dict[str, MDRun] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a metric is None (a property the model could not give)

    def to_json(self) -> dict:
        out: dict = dict(self.metrics)
        out[MD_RUNS_KEY] = {name: run.to_json() for name, run in self.md_runs.items()}
        if self.timings:
            out[TIMINGS_KEY] = dict(self.timings)
        if self.notes:
            out[NOTES_KEY] = dict(self.notes)
        return out

    @classmethod
    def of(cls, record) -> "ScoreResult | None":
        """A ledger row's scorecard, typed (metrics, MD runs, timings apart); None before it was scored."""
        return cls.from_json(record.metrics) if getattr(record, "metrics", None) else None

    @classmethod
    def from_json(cls, d: dict | None) -> "ScoreResult":
        d = dict(d or {})
        runs = d.pop(MD_RUNS_KEY, None) or {}
        timings = d.pop(TIMINGS_KEY, None) or {}
        notes = d.pop(NOTES_KEY, None) or {}
        metrics = {k: v for k, v in d.items() if v is None or isinstance(v, (int, float))}
        return cls(metrics, {k: MDRun.from_json(v) for k, v in runs.items() if isinstance(v, dict)},
                   {k: float(v) for k, v in timings.items()}, {str(k): str(v) for k, v in notes.items()})

    def failed_runs(self) -> list[tuple[str, str | None]]:
        return [(name, run.reason) for name, run in self.md_runs.items() if not run.ok]


