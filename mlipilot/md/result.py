"""What the MD engine returns for one checked run: its own type, so the engine depends on nothing above
it (the scorer's ScoreResult holds these, keyed by run name)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MDRun:
    """One checked MD run: did it finish, how far it got, and the first check that stopped it."""
    ok: bool
    steps: int
    reason: str | None = None
    extra: dict = field(default_factory=dict)  # per-run figures a kind adds (atoms, cpu_seconds, ...)
    # what the run's checks saw (closest approach, worst bond, ...) and its integrator timing, from
    # mlipilot.md.run_checked: the kind folds them into the scalar metrics; not written to JSON
    figures: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def completed(self) -> int:
        """Steps that passed every check (the failing step is not one)."""
        return int(self.figures.get("completed_steps", self.steps if self.ok else max(0, self.steps - 1)))

    def to_json(self) -> dict:
        return {"ok": self.ok, "steps": self.steps, "reason": self.reason, **self.extra}

    @classmethod
    def from_json(cls, d: dict) -> "MDRun":
        d = dict(d or {})
        return cls(bool(d.pop("ok", False)), int(d.pop("steps", 0) or 0), d.pop("reason", None), d)
