"""The brief an agent starts each iteration from, rebuilt from the ledger and the workspace
(never an ever-growing chat), so context stays small and a resumed run sees the same state."""

from __future__ import annotations

import hashlib
import json

from mlipilot.knobs import Knob, load_knobs
from mlipilot.records import IterationEvent, Outcome, TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.scorecard.result import ScoreResult
from mlipilot.scorecard.spec import ScorecardSpec, load_spec
from mlipilot.store import Store
from mlipilot.workspace_tools import WorkspaceTools

RECENT_TRIALS = 5
INLINE_FILE_BYTES = 4000  # small editable files are shown whole; larger ones by digest only

SYSTEM_PROMPT = """\
You are an ML research agent improving a MACE interatomic potential. You act only through tools.
Each turn: read what fails, change training options with set_options (or edit train/ files),
then call run_experiment with a one-sentence hypothesis. The harness trains, scores and accepts or
reverts your change. A configuration that was already trained, or an edit that changes nothing
training sees, is refused. Call finish when further experiments are unlikely to help.
Always answer with a tool call."""


def scorecard_summary(spec: ScorecardSpec) -> str:
    cons = "; ".join(f"{c.metric} {'<=' if c.max is not None else '>='} "
                     f"{c.max if c.max is not None else c.min:g} {c.unit}" for c in spec.constraints)
    comp = " + ".join(f"{t.weight:g}*{t.metric}/{t.scale:g}" for t in spec.composite)
    return f"constraints: {cons}\ncomposite (lower is better): {comp}; noise margin {spec.noise_margin:.0%}"


def _trial_line(r: TrialRecord) -> str:
    m = r.metrics or {}
    fmt = lambda k: f"{m[k]:.3g}" if isinstance(m.get(k), (int, float)) else "-"  # noqa: E731
    comp = f"{r.composite:.4g}" if isinstance(r.composite, (int, float)) else "-"
    return (f"trial {r.trial} [{r.verdict}] composite {comp} E {fmt('energy_rmse')} meV/atom "
            f"F {fmt('force_rmse')} meV/Å MD-failed {fmt('md_failed_runs')} | {(r.hypothesis or '')[:160]}"
            f" | {r.diff_stat or ''} | {str(r.reason or '')[:200]}")


def _acting_on(metric: str, knobs: dict[str, Knob]) -> str:
    names = [k.name for k in knobs.values() if k.acts_on_metric(metric)]
    return f"; options documented as acting on it: {', '.join(names)}" if names else ""


def what_fails(best: TrialRecord, spec: ScorecardSpec, knobs: dict[str, Knob] | None = None) -> str:
    """The incumbent's violated constraints in physical units (value, bound, unit, factor) and its
    failed MD runs with step and reason: normalised violations are easy to misread. Beside each,
    the options knobs.yaml documents as acting on that metric (documentation, not a prescription)."""
    knobs = knobs or {}
    score = ScoreResult.of(best) or ScoreResult()
    m = score.metrics
    lines = []
    for c in spec.constraints:
        v = m.get(c.metric)
        if c.violation(v) <= 0:
            continue
        bound = c.max if c.max is not None else c.min
        if not isinstance(v, (int, float)):
            lines.append(f"- {c.metric}: not measured (bound {bound:g} {c.unit})")
            continue
        factor = f" ({v / bound:.1f}×)" if bound else ""
        lines.append(f"- {c.metric} {v:.4g} {c.unit} {'>' if c.max is not None else '<'} {bound:g}{factor}"
                     + _acting_on(c.metric, knobs))
    for name, run in sorted(score.md_runs.items()):
        if not run.ok:
            lines.append(f"- MD {name} failed after {run.steps} steps: {run.reason}")
    return "\n".join(lines) or "nothing: every constraint holds; lower the composite"


def tried_table(trials: list[TrialRecord], events: list[IterationEvent]) -> str:
    """Every trial's option values (as recorded from train/config.yaml) with verdict and key metrics, and
    the iterations that ended without an experiment: so an agent sees what it already tried."""
    keys = sorted({k for t in trials for k in (t.knobs or {})})
    head = "trial | " + " | ".join(keys) + " | verdict | E meV/atom | F meV/Å"
    rows = [head]
    for t in trials:
        m, knobs = (t.metrics or {}), t.knobs or {}
        num = lambda k: f"{m[k]:.3g}" if isinstance(m.get(k), (int, float)) else "-"  # noqa: E731
        rows.append(f"{t.trial} | " + " | ".join(str(knobs.get(k, "-")) for k in keys)
                    + f" | {t.verdict} | {num('energy_rmse')} | {num('force_rmse')}")
    for e in events:
        if e.outcome != Outcome.EXPERIMENT:
            rows.append(f"iteration {'?' if e.iteration is None else e.iteration}: no experiment ({e.outcome}): "
                        f"{str(e.text)[:160]}")
    return "\n".join(rows)


def build_brief(cfg: RunConfig, tools: WorkspaceTools, iteration: int, iterations_total: int) -> str:
    """Static text first (program, scorecard: byte-identical across iterations, so a server's prompt
    cache reuses it), then this iteration's state."""
    spec = load_spec(Store(cfg.store).scorecard)
    trials = tools.history.trials()
    best = tools.history.incumbent()
    parts = []
    program = cfg.root / "program.md"
    if program.is_file():
        parts.append(program.read_text().strip())
    parts.append("## Scorecard\n" + scorecard_summary(spec))
    parts.append(f"# Iteration {iteration} of {iterations_total}")
    if best:
        m = {k: v for k, v in (best.metrics or {}).items() if not isinstance(v, dict)
             and not k.startswith(("energy_rmse_", "force_rmse_"))}
        parts.append(f"## Best so far (the current files)\n{_trial_line(best)}\nviolations: "
                     f"{json.dumps(best.violations)}\nmetrics: "
                     f"{json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})}")
        knobs = load_knobs(cfg.root / "knobs.yaml", with_mace=False)
        parts.append("## What fails (the best so far)\n" + what_fails(best, spec, knobs))
    else:
        parts.append("## Best so far\nno trial yet")
    if trials:
        parts.append("## Configurations tried\n" + tried_table(trials, tools.history.iterations()))
        parts.append("## Recent trials\n" + "\n".join(_trial_line(r) for r in trials[-RECENT_TRIALS:]))
    files = []
    for e in cfg.editable:
        for p in sorted((cfg.root / e).rglob("*")):
            if not p.is_file() or "__pycache__" in p.parts:
                continue
            rel = p.relative_to(cfg.root).as_posix()
            data = p.read_bytes()
            if len(data) <= INLINE_FILE_BYTES and rel.endswith((".yaml", ".yml", ".toml")):
                files.append(f"### {rel}\n```\n{data.decode(errors='replace').rstrip()}\n```")
            else:
                n_lines = data.count(b"\n")
                files.append(f"### {rel}: {len(data)} bytes, {n_lines} lines, "
                             f"sha256 {hashlib.sha256(data).hexdigest()[:12]} (read_file to see it)")
    if cfg.data is not None and cfg.data.enabled:  # [data] in mlipilot.toml: the data actions' state
        from mlipilot.data_actions.brief import brief_section

        parts.append(brief_section(cfg))
    parts.append("## Editable files\n" + "\n".join(files))
    return "\n\n".join(parts)
