"""Accept or reject a candidate against the incumbent.

Order: integrity -> smoke (did the job give a usable model) -> feasibility -> composite
improvement beyond the noise margin. An infeasible incumbent is beaten by any feasible
candidate, or by an infeasible one with clearly less total normalised violation.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlipilot.scorecard.spec import ScorecardSpec

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"


@dataclass(frozen=True)
class Assessment:
    """What the scorecard says about one model, independent of any other model."""

    violations: dict[str, float]  # metric -> normalised violation, only the broken constraints
    total_violation: float
    composite: float

    @property
    def feasible(self) -> bool:
        return self.total_violation == 0.0


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str


def assess(metrics: dict, spec: ScorecardSpec) -> Assessment:
    violations = {}
    for c in spec.constraints:
        v = c.violation(metrics.get(c.metric))
        if v > 0:
            violations[c.metric] = v
    composite = 0.0
    for t in spec.composite:
        value = metrics.get(t.metric)
        composite += t.weight * (value / t.scale if value is not None and value == value else 1e6)
    return Assessment(violations, float(sum(violations.values())), float(composite))


def _describe(a: Assessment) -> str:
    if a.feasible:
        return f"feasible, composite {a.composite:.4f}"
    broken = ", ".join(f"{k} (+{v:.2f})" for k, v in sorted(a.violations.items()))
    return f"infeasible: {broken}; total violation {a.total_violation:.3f}"


def decide(candidate: Assessment | None, incumbent: Assessment | None, spec: ScorecardSpec,
           integrity_problem: str | None = None, job_error: str | None = None) -> Verdict:
    if integrity_problem:
        return Verdict(REJECTED, f"integrity: {integrity_problem}")
    if job_error or candidate is None:
        return Verdict(FAILED, f"smoke: {job_error or 'no scorecard was produced'}")
    if incumbent is None:
        return Verdict(ACCEPTED, f"baseline: first scored trial becomes the incumbent ({_describe(candidate)})")
    margin = spec.noise_margin
    if not incumbent.feasible:
        if candidate.feasible:
            return Verdict(ACCEPTED, f"first feasible model ({_describe(candidate)}); incumbent was infeasible")
        if candidate.total_violation < incumbent.total_violation * (1 - margin):
            return Verdict(ACCEPTED, f"less constraint violation: {candidate.total_violation:.3f} < "
                                     f"{incumbent.total_violation:.3f} ({_describe(candidate)})")
        return Verdict(REJECTED, f"violation not reduced beyond the {margin:.0%} margin: "
                                 f"{candidate.total_violation:.3f} vs incumbent {incumbent.total_violation:.3f}"
                                 f" ({_describe(candidate)})")
    if not candidate.feasible:
        return Verdict(REJECTED, f"{_describe(candidate)}; the incumbent is feasible")
    if candidate.composite < incumbent.composite * (1 - margin):
        return Verdict(ACCEPTED, f"composite improved {incumbent.composite:.4f} -> {candidate.composite:.4f}")
    return Verdict(REJECTED, f"composite {candidate.composite:.4f} does not beat incumbent "
                             f"{incumbent.composite:.4f} by the {margin:.0%} noise margin")
