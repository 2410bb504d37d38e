"""Typed records of the data actions: what a sample, a selection, a labelling and an addition
produced, kept as JSON in the private store (store/data/) and quoted in the ledger."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

from mlipilot.errors import MLIPilotError


class DataRefusal(MLIPilotError):
    """A data action refused before any job: bad input or a spent budget (one line with the fix)."""


class Driver(StrEnum):
    INCUMBENT = "incumbent"  # the accepted model (MD with it finds where it fails)
    REFERENCE = "reference"  # the reference calculator (labels come free with the frames)


class Method(StrEnum):
    LANGEVIN = "langevin"
    NPT = "npt"  # Berendsen, isotropic
    RAMP = "ramp"  # Langevin with a linear thermostat ramp t0 -> t1
    RATTLE = "rattle"
    STRAIN = "strain"
    VACANCY = "vacancy"
    COMPRESSION = "compression"

    @property
    def is_md(self) -> bool:
        return self in (Method.LANGEVIN, Method.NPT, Method.RAMP)


class Strategy(StrEnum):
    MAX_ERROR = "max_error"
    COMMITTEE = "committee"
    FPS = "fps"
    RANDOM = "random"


class _Json:
    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Budget(_Json):
    calls: int
    cpu_seconds: float
    calls_spent: int = 0
    cpu_spent: float = 0.0
    calls_reserved: int = 0  # held by a label job that has not settled yet

    @property
    def calls_left(self) -> int:
        return max(0, self.calls - self.calls_spent - self.calls_reserved)

    @property
    def cpu_left(self) -> float:
        return max(0.0, self.cpu_seconds - self.cpu_spent)

    def line(self) -> str:
        held = f", {self.calls_reserved} held by a running label job" if self.calls_reserved else ""
        return (f"labels spent {self.calls_spent}/{self.calls} reference calls{held}, "
                f"{self.cpu_spent:.0f}/{self.cpu_seconds:.0f} CPU-s (left: {self.calls_left} calls)")


@dataclass
class Pool(_Json):
    id: int
    source: str
    driver: str
    method: str
    conditions: dict
    n: int
    frames_stats: list[dict] = field(default_factory=list)  # per frame: config_type, start, T, d_min, max_f
    early_stops: list[dict] = field(default_factory=list)  # {structure, temperature, step, reason}
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def summary(self) -> str:
        stops = "; ".join(f"{s['structure']} @ {s.get('temperature')} K step {s['step']}: {s['reason']}"
                          for s in self.early_stops[:4]) or "none"
        return (f"pool {self.id}: {self.n} frames from {self.source!r} ({self.method}, {self.driver}, "
                f"{self.conditions}); early stops: {stops}")


@dataclass
class Selection(_Json):
    id: int
    pool: int
    strategy: str
    indices: list[int]
    scores: list[float]
    params: dict = field(default_factory=dict)
    labels_spent: int = 0  # max_error labels the whole pool
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def summary(self) -> str:
        s = sorted(self.scores)
        stats = f"score min {s[0]:.3g} median {s[len(s) // 2]:.3g} max {s[-1]:.3g}" if s else "no frames"
        return f"selection {self.id}: {len(self.indices)} of pool {self.pool} by {self.strategy} ({stats})"


@dataclass
class Labelled(_Json):
    id: int
    selection: int
    n: int
    calls: int  # reference calls charged now (cache hits of charged labels are free)
    cpu_seconds: float
    failed: list[dict] = field(default_factory=list)  # SCF not converged, non-finite
    cached: int = 0
    budget_left: int = 0
    stopped: str | None = None  # why labelling stopped early (budget)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def summary(self) -> str:
        return (f"labelled {self.id}: {self.n} frames of selection {self.selection}, {self.calls} reference "
                f"calls ({self.cached} cached), {len(self.failed)} failed"
                + (f", stopped: {self.stopped}" if self.stopped else ""))


@dataclass
class DataOutcome(_Json):
    action: str  # add | prune
    commit: str | None
    file: str | None
    frames_added: int = 0
    frames_removed: int = 0
    refused: list[dict] = field(default_factory=list)  # frames refused (holdout/validation duplicates)
    message: str = ""

    def summary(self) -> str:
        return self.message
