"""Accept or reject a candidate against the incumbent.

Order: integrity -> smoke (did the job give a usable model) -> feasibility -> composite
improvement beyond the noise margin. An infeasible incumbent is beaten by any feasible
candidate, or by an infeasible one with clearly less total normalised violation.

The margin is max(noise_margin x incumbent, z x sigma), sigma being the seed-to-seed spread the
harness measured for the incumbent (`mlipilot noise`); without a measurement it is the scorecard's
relative noise_margin alone. A win smaller than `confirm` x sigma is a close call (`Verdict.close`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlipilot.records import VerdictKind
from mlipilot.scorecard.spec import ScorecardSpec

ACCEPTED, REJECTED, FAILED = VerdictKind.ACCEPTED, VerdictKind.REJECTED, VerdictKind.FAILED


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
    verdict: VerdictKind
    reason: str
    margin: float | None = None  # the absolute margin the decision used (composite or violation units)
    close: bool = False  # accepted by less than confirm x sigma: worth a second seed


@dataclass(frozen=True)
class Noise:
    """Seed-to-seed spread (standard deviation) of the incumbent's composite and total violation."""

    sigma_composite: float
    sigma_violation: float
    z: float = 2.0
    confirm: float = 3.0


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


def _margin(spec: ScorecardSpec, reference: float, sigma: float | None, noise: Noise | None) -> tuple[float, str]:
    relative = spec.noise_margin * abs(reference)
    if noise is None or sigma is None or noise.z * sigma <= relative:
        return relative, f"the {spec.noise_margin:.0%} noise margin ({relative:.4g})"
    return noise.z * sigma, f"{noise.z:g} sigma = {noise.z * sigma:.4g} (measured seed noise)"


def decide(candidate: Assessment | None, incumbent: Assessment | None, spec: ScorecardSpec,
           integrity_problem: str | None = None, job_error: str | None = None,
           noise: Noise | None = None) -> Verdict:
    if integrity_problem:
        return Verdict(REJECTED, f"integrity: {integrity_problem}")
    if job_error or candidate is None:
        return Verdict(FAILED, f"smoke: {job_error or 'no scorecard was produced'}")
    if incumbent is None:
        return Verdict(ACCEPTED, f"baseline: first scored trial becomes the incumbent ({_describe(candidate)})")
    if not incumbent.feasible:
        if candidate.feasible:
            return Verdict(ACCEPTED, f"first feasible model ({_describe(candidate)}); incumbent was infeasible")
        sigma = noise.sigma_violation if noise else None
        margin, says = _margin(spec, incumbent.total_violation, sigma, noise)
        gain = incumbent.total_violation - candidate.total_violation
        if gain > margin:
            return Verdict(ACCEPTED, f"less constraint violation: {candidate.total_violation:.3f} < "
                                     f"{incumbent.total_violation:.3f} beyond {says} ({_describe(candidate)})",
                           margin, _close(gain, sigma, noise))
        return Verdict(REJECTED, f"violation not reduced beyond {says}: "
                                 f"{candidate.total_violation:.3f} vs incumbent {incumbent.total_violation:.3f}"
                                 f" ({_describe(candidate)})", margin)
    if not candidate.feasible:
        return Verdict(REJECTED, f"{_describe(candidate)}; the incumbent is feasible")
    sigma = noise.sigma_composite if noise else None
    margin, says = _margin(spec, incumbent.composite, sigma, noise)
    gain = incumbent.composite - candidate.composite
    if gain > margin:
        return Verdict(ACCEPTED, f"composite improved {incumbent.composite:.4f} -> {candidate.composite:.4f}"
                                 f" beyond {says}", margin, _close(gain, sigma, noise))
    return Verdict(REJECTED, f"composite {candidate.composite:.4f} does not beat incumbent "
                             f"{incumbent.composite:.4f} by {says}", margin)


def _close(gain: float, sigma: float | None, noise: Noise | None) -> bool:
    return bool(noise and sigma and gain < noise.confirm * sigma)
