"""The brief an agent starts each iteration from, rebuilt from the ledger and the workspace
(never an ever-growing chat), so context stays small and a resumed run sees the same state."""

from __future__ import annotations

import hashlib
import json

from mlipilot.run_config import RunConfig
from mlipilot.scorecard.spec import ScorecardSpec, load_spec
from mlipilot.workspace_tools import WorkspaceTools

RECENT_TRIALS = 5
INLINE_FILE_BYTES = 4000  # small editable files are shown whole; larger ones by digest only

SYSTEM_PROMPT = """\
You are an ML research agent improving a MACE interatomic potential. You act only through tools.
Each turn: inspect what you need, make ONE focused edit under train/ (edit_file or write_file),
then call run_experiment with a one-sentence hypothesis. The harness trains, scores and accepts or
reverts your edit. Call finish when further experiments are unlikely to help.
Always answer with a tool call."""


def scorecard_summary(spec: ScorecardSpec) -> str:
    cons = "; ".join(f"{c.metric} {'<=' if c.max is not None else '>='} "
                     f"{c.max if c.max is not None else c.min:g} {c.unit}" for c in spec.constraints)
    comp = " + ".join(f"{t.weight:g}*{t.metric}/{t.scale:g}" for t in spec.composite)
    return f"constraints: {cons}\ncomposite (lower is better): {comp}; noise margin {spec.noise_margin:.0%}"


def _trial_line(r: dict) -> str:
    m = r.get("metrics") or {}
    fmt = lambda k: f"{m[k]:.3g}" if isinstance(m.get(k), (int, float)) else "-"  # noqa: E731
    comp = f"{r['composite']:.4g}" if isinstance(r.get("composite"), (int, float)) else "-"
    return (f"trial {r['trial']} [{r.get('verdict')}] composite {comp} E {fmt('energy_rmse')} meV/atom "
            f"F {fmt('force_rmse')} meV/Å MD-failed {fmt('md_failed_runs')} | {r.get('hypothesis', '')[:160]}"
            f" | {r.get('diff_stat', '')} | {str(r.get('reason', ''))[:200]}")


def build_brief(cfg: RunConfig, tools: WorkspaceTools, iteration: int, iterations_total: int) -> str:
    spec = load_spec(cfg.store / "scorecard.yaml")
    trials = tools.ledger.trials()
    best = tools.ledger.incumbent()
    parts = [f"# Iteration {iteration} of {iterations_total}"]
    program = cfg.root / "program.md"
    if program.is_file():
        parts.append(program.read_text().strip())
    parts.append("## Scorecard\n" + scorecard_summary(spec))
    if best:
        m = {k: v for k, v in (best.get("metrics") or {}).items() if not isinstance(v, dict)
             and not k.startswith(("energy_rmse_", "force_rmse_"))}
        parts.append(f"## Best so far (the current files)\n{_trial_line(best)}\nviolations: "
                     f"{json.dumps(best.get('violations'))}\nmetrics: "
                     f"{json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})}")
    else:
        parts.append("## Best so far\nno trial yet: run the baseline first (run_experiment without edits).")
    if trials:
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
    parts.append("## Editable files\n" + "\n".join(files))
    return "\n\n".join(parts)
