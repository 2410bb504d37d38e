"""The decision, as pure functions over records: assess the candidate against the incumbent (with the
measured seed noise), confirm a close call with a second seed, summarise a noise measurement."""

from __future__ import annotations

import dataclasses
import statistics

from mlipilot.records import FailureKind, NoiseEvent, TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.scorecard.spec import ScorecardSpec
from mlipilot.scorecard.verdict import ACCEPTED, FAILED, REJECTED, Assessment, Noise, Verdict, assess, decide
from mlipilot.trial.stages import PipelineResult

SEED_IGNORED = ("train/train.py ignores MLIPILOT_SEED, so seeds measure nothing; pass it to mace-torch "
                "(`--seed`, as the shipped train.py does)")
INTERRUPTED_REASON = ("interrupted: the launcher stopped before the verdict and its job did not survive; not "
                      "counted as an iteration, the experiment may be retried")


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: Verdict
    candidate: Assessment | None
    incumbent: Assessment | None
    noise: Noise | None


@dataclasses.dataclass(frozen=True)
class Decided:
    """Everything the recorder writes for a decided trial, handed over once: the verdict (after any
    close-call confirmation), what was assessed, the pipeline's outcome and how the trial ran."""
    verdict: Verdict
    candidate: Assessment | None
    incumbent: TrialRecord | None
    noise: Noise | None
    outcome: PipelineResult
    integrity: str | None
    seeds: list[int]
    confirm: dict | None = None  # the close call's second seed
    foundation: str | None = None  # `name sha256-prefix` it fine-tuned from
    wall_total: float = 0.0


def noise_for(incumbent: TrialRecord | None, events: list[NoiseEvent], spec: ScorecardSpec,
              cfg: RunConfig) -> Noise | None:
    """The latest noise measurement (`mlipilot noise`), scaled to the current incumbent: the spread is
    kept relative to its mean, which held across a 9x change of the Cu composite (13 % of 13.6 for the
    shipped baseline, 10 % of 1.53 for the expert's fix; 3 seeds each), where an absolute sigma
    from the baseline would block every later gain."""
    if not incumbent or not events:
        return None
    e = events[-1]
    inc = assess(incumbent.metrics, spec)
    rel = lambda sigma, values: sigma / abs(sum(values) / len(values)) if any(values) else 0.0  # noqa: E731
    return Noise(rel(e.sigma_composite, e.composite) * abs(inc.composite),
                 rel(e.sigma_violation, e.total_violation) * inc.total_violation,
                 cfg.noise.z, cfg.noise.confirm)


def decide_trial(outcome: PipelineResult, incumbent: TrialRecord | None, spec: ScorecardSpec, noise: Noise | None,
                 integrity: str | None) -> Decision:
    inc = assess(incumbent.metrics, spec) if incumbent else None
    candidate = assess(outcome.metrics, spec) if outcome.metrics else None
    verdict = decide(candidate, inc, spec, integrity_problem=integrity, job_error=outcome.error, noise=noise)
    if outcome.failure == FailureKind.INTERRUPTED and verdict.verdict == FAILED:
        # a job that ended with its stopped launcher: say so, not "smoke" (agents read the reason)
        verdict = dataclasses.replace(verdict, reason=f"{INTERRUPTED_REASON} ({outcome.error})")
    return Decision(verdict, candidate, inc, noise)


def confirm(first: Decision, seed: int, second: PipelineResult, identical_weights: bool,
            spec: ScorecardSpec) -> tuple[Verdict, dict]:
    """Accept a close call only if the mean over two harness seeds still beats the incumbent; `second`
    is the candidate trained again with harness seed `seed`."""
    candidate, verdict = first.candidate, first.verdict
    again = assess(second.metrics, spec) if second.metrics else None
    if again is not None and identical_weights:
        return Verdict(REJECTED, f"close call not confirmed: seeds {seed - 1} and {seed} trained identical "
                       f"weights — {SEED_IGNORED}", verdict.margin), {"seed": seed, "identical_weights": True}
    record = {"seed": seed, "metrics": second.metrics, "error": second.error,
              "composite": again.composite if again else None,
              "total_violation": again.total_violation if again else None}
    if again is None:
        return Verdict(REJECTED, f"close call not confirmed: seed {seed} failed ({second.error})",
                       verdict.margin), record
    mean = Assessment({k: (candidate.violations.get(k, 0) + again.violations.get(k, 0)) / 2
                       for k in {*candidate.violations, *again.violations}},
                      (candidate.total_violation + again.total_violation) / 2,
                      (candidate.composite + again.composite) / 2)
    both_ = decide(mean, first.incumbent, spec, noise=first.noise)
    both = f"seeds {seed - 1} and {seed}: composite {candidate.composite:.4f}, {again.composite:.4f}"
    if both_.verdict == ACCEPTED:
        return Verdict(ACCEPTED, f"{verdict.reason}; confirmed by the mean over {both}", both_.margin), record
    return Verdict(REJECTED, f"close call not confirmed: the mean over {both} does not hold ({both_.reason})",
                   both_.margin), record


def failure_kind(verdict: Verdict, outcome: PipelineResult, integrity: str | None) -> str | None:
    """The trial's FailureKind: why it failed, or was rejected for integrity; None otherwise."""
    if integrity:
        return str(FailureKind.INTEGRITY)
    if verdict.verdict != FAILED:
        return None
    return str(outcome.failure or FailureKind.SMOKE)  # no scorecard without a job error: smoke


def noise_event(row: TrialRecord, runs: list[dict], spec: ScorecardSpec, wall_s: float) -> NoiseEvent:
    """The spread of every metric, the composite and the total violation over `runs` (seed, metrics)."""
    assessed = [assess(r["metrics"], spec) for r in runs]
    names = sorted(k for k, v in runs[0]["metrics"].items() if isinstance(v, (int, float)))
    values = {m: [r["metrics"].get(m) for r in runs] for m in names}
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    return NoiseEvent(incumbent_trial=row.trial, commit=row.commit, seeds=[r["seed"] for r in runs], values=values,
                      sigma={m: sd([x for x in v if isinstance(x, (int, float))]) for m, v in values.items()},
                      composite=[a.composite for a in assessed],
                      total_violation=[a.total_violation for a in assessed],
                      sigma_composite=sd([a.composite for a in assessed]),
                      sigma_violation=sd([a.total_violation for a in assessed]), wall_s=round(wall_s, 1))
