"""What a validation check is: a plug-in (one module + one line in checks.CHECK_KINDS) that measures
one or more quantities on a model and on the reference, and returns them as Measurements; the
harness applies the spec's bound to each measurement's `error` and times the check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from ase import Atoms
from ase.calculators.calculator import Calculator


@dataclass(frozen=True)
class Measurement:
    quantity: str  # e.g. "C11", "fraction_completed_1300K", "drift"
    value: float | None  # the model's value (None: could not be computed — fails the bound)
    reference: float | None  # the reference's value where one exists
    error: float | None  # what the bound applies to (a relative error in %, an absolute error, a fraction...)
    detail: str = ""  # one line: why it failed, where MD stopped, ...
    unit: str = ""  # the error's unit when it differs from the check kind's


@dataclass(frozen=True)
class ValidationContext:
    """What a check may use. Never the training data or anything the agent wrote besides the model."""
    element: str | None  # bulk benchmarks: the fcc element and its lattice
    lattice_a: float | None
    reference: Callable[[], Calculator] | None  # a fresh reference calculator (EMT for Cu); None for molecules
    holdout: list[Atoms]  # the private holdout frames (labels included)
    scorecard_molecules: tuple[str, ...] = ()  # molecules the scorecard's MD used (validation takes others)
    reference_molecules: list[Atoms] = field(default_factory=list)  # molecules with labels beyond the holdout
    progress: Callable[[str], None] = lambda s: None
    md_frames: list[Atoms] = field(default_factory=list)  # where the scorecard's MD starts (md_structures or holdout)
    scorecard: Any = None  # the run's ScorecardSpec: its stability checks and bounds for MD on the user's structures


class CheckFn(Protocol):
    def __call__(self, calc: Calculator, ctx: ValidationContext, params: dict[str, Any]) -> list[Measurement]: ...


@dataclass(frozen=True)
class CheckResult:
    check: str  # the spec's name for the check
    kind: str
    quantity: str
    value: float | None
    reference: float | None
    error: float | None
    unit: str
    bound: str  # e.g. "≤ 10" — human-readable, as the spec gave it
    passed: bool
    seconds: float
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "CheckResult":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})
