"""The brief an agent starts each iteration from, rebuilt from the ledger and the workspace
(never an ever-growing chat), so context stays small and a resumed run sees the same state."""

from __future__ import annotations

import hashlib
import json

from mlipilot.knobs import Knob, load_knobs
from mlipilot.records import IterationEvent, Outcome, TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.scorecard.metrics import parse_metric
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


def _property_values(metric: str, m: dict) -> str:
    """A property metric's own values (the model's B, C11 ... in physical units), from the scorecard."""
    from mlipilot.scorecard.properties import PROPERTY_METRICS, VALUE_UNITS

    if metric not in PROPERTY_METRICS:
        return ""
    shown = [f"{k.removeprefix('property_')} {v:.4g} {VALUE_UNITS.get(k.removeprefix('property_'), VALUE_UNITS['E_surf_*'])}"
             for k, v in m.items() if k.startswith("property_") and isinstance(v, (int, float))
             and any(k.removeprefix("property_") == q or (q == "E_surf_*" and k.startswith("property_E_surf_"))
                     for q in PROPERTY_METRICS[metric][1])]
    return f" (the model's {', '.join(shown)})" if shown else ""


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
            why = f": {score.notes[c.metric]}" if c.metric in score.notes else ""
            lines.append(f"- {c.metric}: not measured (bound {bound:g} {c.unit}){why}" + _acting_on(c.metric, knobs))
            continue
        factor = f" ({v / bound:.1f}×)" if bound else ""
        lines.append(f"- {c.metric} {v:.4g} {c.unit} {'>' if c.max is not None else '<'} {bound:g}{factor}"
                     + _property_values(c.metric, m) + _acting_on(c.metric, knobs))
    for name, run in sorted(score.md_runs.items()):
        if not run.ok:
            lines.append(f"- MD {name} failed after {run.steps} steps: {run.reason}")
    return "\n".join(lines) or "nothing: every constraint holds; lower the composite"


NEXT_CALLS = 4  # entries of the ranked list of next calls
REFUSED_SHOWN = 8  # refused calls of earlier iterations named in the brief


def earlier_iterations(rows: list[dict]) -> dict[int, dict]:
    """Per earlier agent iteration, what the ledger recorded of an LLM agent's calls: {"calls": [...],
    "refused_calls": [{"call", "why"}, ...]} (trials and iterations without an experiment alike)."""
    out: dict[int, dict] = {}
    for r in rows:
        it = r.get("iteration")
        if isinstance(it, int) and not isinstance(it, bool) and it > 0 and (r.get("calls") or r.get("refused_calls")):
            out[it] = {"calls": [str(c) for c in r.get("calls") or []],
                       "refused_calls": [c for c in r.get("refused_calls") or [] if isinstance(c, dict)]}
    return out


def refused_calls_section(rows: list[dict], iteration: int) -> str | None:
    """Earlier iterations' refused calls with why, newest first, each once: what not to send again."""
    seen, lines = set(), []
    for it, rec in sorted(earlier_iterations(rows).items(), reverse=True):
        if it >= iteration:
            continue
        for c in rec["refused_calls"]:
            call = str(c.get("call", ""))
            if call in seen:
                continue
            seen.add(call)
            lines.append(f"- iteration {it}: {call} -> {c.get('why', '')}")
    if not lines:
        return None
    return ("## Calls refused in earlier iterations (sending one again gets the same answer)\n"
            + "\n".join(lines[:REFUSED_SHOWN]))


def _targets(best: TrialRecord, spec: ScorecardSpec) -> list[str]:
    """The metrics to move, most violated first; with every constraint met, the composite's terms."""
    m = (ScoreResult.of(best) or ScoreResult()).metrics
    failing = sorted(((c.violation(m.get(c.metric)), i, c.metric) for i, c in enumerate(spec.constraints)
                      if c.violation(m.get(c.metric)) > 0), key=lambda x: (-x[0], x[1]))
    names = [metric for _, _, metric in failing]
    return names or [t.metric for t in sorted(spec.composite, key=lambda t: -t.weight)]


def _next_value(knob: Knob, now, config: dict, tried: list[dict]):
    """The option's next declared choice after its current value whose configuration no trial has
    trained (knobs.yaml lists choices from the default onwards, in the direction the option acts: an
    unset option counts as at its first choice); None past the last choice, or where the current
    value is not a declared choice (a value someone chose is not second-guessed)."""
    choices = list(knob.choices or ())
    if now is None:
        at = 0 if choices else None
    else:
        at = next((i for i, c in enumerate(choices) if c == now and isinstance(c, bool) == isinstance(now, bool)),
                  None)
    if at is None:
        return None
    for value in choices[at + 1:]:
        if {**config, knob.name: value} not in tried:
            return value
    return None


def _suggestion(knob: Knob, metric: str) -> tuple[bool, object]:
    """(True, value) where knobs.yaml suggests a value of this option for the metric (`suggest`,
    keyed by metric or by its quantity), else (False, None)."""
    table = getattr(knob, "suggest", None) or {}
    if metric in table:
        return True, table[metric]
    ref = parse_metric(metric)
    if ref is not None and ref.quantity in table:
        return True, table[ref.quantity]
    return False, None


def data_calls(cfg: RunConfig) -> dict[str, tuple[tuple[str, ...], dict]]:
    """The data actions documented as acting on metrics, with the call to make: tool -> (metrics,
    arguments), from mlipilot.data_actions.tools.ACTS_ON where it declares them; none without [data]."""
    if cfg.data is None or not cfg.data.enabled:
        return {}
    from mlipilot.data_actions import tools as data_tools

    return dict(getattr(data_tools, "ACTS_ON", None) or {})


def next_calls(best: TrialRecord, spec: ScorecardSpec, knobs: dict[str, Knob], trials: list[TrialRecord],
               limit: int = NEXT_CALLS, data: dict[str, tuple[tuple[str, ...], dict]] | None = None) -> list[str]:
    """The ranked list as the brief shows it: "call — why" (see ranked_options)."""
    return [f"{call} — {why}" for call, why, _ in ranked_options(best, spec, knobs, trials, limit, data)]


def ranked_options(best: TrialRecord, spec: ScorecardSpec, knobs: dict[str, Knob], trials: list[TrialRecord],
                   limit: int = NEXT_CALLS, data: dict[str, tuple[tuple[str, ...], dict]] | None = None
                   ) -> list[tuple[str, str, dict | None]]:
    """(call, why, the options it sets or None for a data action), best first: one short ranked list
    of calls an agent can copy, each one call that sets options documented
    (knobs.yaml `acts_on`) as acting on what fails, to a declared value no trial has trained: the
    most violated metric first, its options in knobs.yaml's order, one per metric in turn. A knob's
    `suggest` ({metric: value}, where knobs.yaml declares one) joins the options suggested for the
    same metric into one call, ranked first for it; a data action documented as acting on the metric
    (`data`: tool -> (metrics, arguments)) comes next."""
    config = dict(best.knobs or {})
    tried = [dict(t.knobs) for t in trials if t.knobs]
    targets = _targets(best, spec)
    now = lambda name: "unset" if config.get(name) is None else json.dumps(config.get(name))  # noqa: E731
    per_metric: list[list[tuple[dict, str]]] = []
    for metric in targets:
        acting = [k for k in knobs.values() if k.acts_on_metric(metric)]
        options: list[tuple[dict, str]] = []
        suggested = {k.name: v for k in knobs.values() for found, v in [_suggestion(k, metric)] if found}
        if suggested and {**config, **suggested} not in tried and any(config.get(n) != v for n, v in suggested.items()):
            options.append((suggested, f"what knobs.yaml suggests for {metric} ("
                            + ", ".join(f"{n} now {now(n)}" for n in suggested) + ")"))
        for tool, (metrics, arguments) in (data or {}).items():
            if any(metric == m or (parse_metric(metric) is not None and parse_metric(metric).quantity == m)
                   for m in metrics):
                options.append(((tool, arguments), f"{tool} acts on {metric} (then the data tools' next steps)"))
        for k in acting:
            value = _next_value(k, config.get(k.name), config, tried)
            if value is not None:
                acts = ", ".join(t for t in targets if k.acts_on_metric(t))
                options.append(({k.name: value}, f"{k.name} (now {now(k.name)}) acts on {acts}"))
        per_metric.append(options)
    ranked, seen = [], set()
    for rank in range(max((len(o) for o in per_metric), default=0)):
        for options in per_metric:
            if rank < len(options):
                what, why = options[rank]
                call = (f"{what[0]}({json.dumps(what[1], sort_keys=True)})" if isinstance(what, tuple)
                        else "set_options(" + json.dumps({"updates": what}, sort_keys=True) + ")")
                if call not in seen:
                    seen.add(call)
                    ranked.append((call, why, None if isinstance(what, tuple) else what))
    return ranked[:limit]


def ranked_calls(cfg: RunConfig, tools: WorkspaceTools) -> list[tuple[str, dict | None]]:
    """The brief's ranked next calls: (call, the options it sets or None), what an LLM agent's
    refusals point to."""
    best = tools.history.incumbent()
    if best is None:
        return []
    spec = load_spec(Store(cfg.store).scorecard)
    knobs = load_knobs(cfg.root / "knobs.yaml", with_mace=False)
    return [(call, updates) for call, _, updates in ranked_options(best, spec, knobs, tools.history.trials(),
                                                                    data=data_calls(cfg))]


def tried_table(trials: list[TrialRecord], events: list[IterationEvent]) -> str:
    """Every trial's option values (as recorded from train/config.yaml) with verdict and key metrics, and
    the iterations that ended without an experiment: so an agent sees what it already tried."""
    keys = sorted({k for t in trials for k, v in (t.knobs or {}).items() if v is not None})  # never set: no column
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
        calls = next_calls(best, spec, knobs, trials, data=data_calls(cfg))
        if calls:
            parts.append("## Next calls, ranked (none of them tried yet; each is one call: send one, then "
                         "run_experiment)\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(calls, 1)))
    else:
        parts.append("## Best so far\nno trial yet")
    if trials:
        parts.append("## Configurations tried\n" + tried_table(trials, tools.history.iterations()))
        refused = refused_calls_section(tools.history.rows(), iteration)
        if refused:
            parts.append(refused)
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
