"""How well do the embedded local LLMs do research? Each model x seed runs the real loop on Cu EMT
(real training and scoring) and the ledger is read back into one row per run:

  experiments      trials the agent made (the harness's own baseline not counted); exp/it per iteration
  replayed         iterations whose calls were exactly an earlier iteration's of the same run (issue 35: none)
  distinct         distinct configurations trained (parsed train/ files: comments, whitespace and
                   the harness-owned seed ignored), the baseline included; trained twice = trials - distinct
  refused          attempts the harness refused before any job (a repeat of a tried configuration,
                   an edit that changes nothing once parsed)
  tool errors      malformed calls, unknown tools, refused paths, bad option values
  tok/it, llm s/it tokens and LLM seconds per agent iteration; s/it wall seconds per agent iteration
                   (training and scoring included; the harness's baseline is in wall_s, not here)
  cached           share of prompt tokens the server took from its prompt cache (when it says)
  accepted         agent-made trials accepted
  best             the incumbent's composite at the end (lower is better), feasible or not
  1st feasible     the first agent iteration whose trial was feasible

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/agent_quality.py [--models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
        [--seeds 3] [--first-seed 1] [--iterations 6] [--size default] [--out DIR]

The demo configuration (`mlipilot demo`): --iterations 3 --llm-calls 6 --size default. A seed sets both
the harness's training seed and the LLM agent's run seed (each iteration samples with a seed derived
from it and the iteration, at the client's temperature, as in `mlipilot demo`). Results go to
OUT/agent_quality.json; an interrupted benchmark resumes its runs, and `--first-seed 3 --seeds 3` adds
seeds 3..5 to the same OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import git  # noqa: E402

from mlipilot.agent_loop import Budget, run_agent  # noqa: E402
from mlipilot.agents import open_agent  # noqa: E402
from mlipilot.demo import LLM_OPTIONS  # noqa: E402  (the demo's LLM options: 20 k tokens per iteration at most)
from mlipilot.ledger import Ledger  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402

try:  # the harness's own notion of "the same configuration"
    from mlipilot.edits import fingerprint_commit
except ImportError:  # older harness: the same normal form, computed here
    from mlipilot.edits import _normal_form

    def fingerprint_commit(root: Path, editable: tuple[str, ...], commit: str) -> str:
        repo = git.Repo(root)
        names = [n for n in repo.git.ls_tree("-r", "--name-only", commit, "--", *editable).splitlines() if n]
        return repr(sorted((n, _normal_form(n, repo.git.show(f"{commit}:{n}"))) for n in names))

HARNESS = "harness"


def summarise(run: Path, wall_s: float) -> dict:
    cfg = load_run_config(run)
    ledger = Ledger(cfg.store / "ledger.jsonl")
    trials = ledger.trials()
    events = [r for r in ledger.rows() if r.get("event") == "iteration"]
    agent_trials = [t for t in trials if t.get("agent") != HARNESS]
    iterations = len(agent_trials) + len(events)
    prints = [fingerprint_commit(run, cfg.editable, t["commit"]) for t in trials]
    counted = agent_trials + events
    tokens = sum(int(r.get("tokens_in") or 0) + int(r.get("tokens_out") or 0) for r in counted)
    prompt = sum(int(r.get("tokens_in") or 0) for r in counted)
    cached = sum(int(r.get("cached_tokens") or 0) for r in counted)
    first_feasible = next((t.get("iteration", i + 1) for i, t in enumerate(agent_trials) if t.get("feasible")), None)
    per_iteration = {}  # iteration -> its calls, as the loop recorded them (LLM agents)
    for r in counted:
        if r.get("calls") and r.get("iteration") is not None:
            per_iteration[r["iteration"]] = tuple(r["calls"])
    ordered = [per_iteration[k] for k in sorted(per_iteration)]
    replayed = sum(1 for i, c in enumerate(ordered) if c in ordered[:i])
    agent_wall = _agent_seconds(ledger.rows(), trials)
    best = ledger.incumbent()
    return {
        "iterations": iterations, "experiments": len(agent_trials), "distinct": len(set(prints)),
        "exp_per_it": len(agent_trials) / iterations if iterations else 0, "replayed": replayed,
        "s_per_it": agent_wall / iterations if iterations and agent_wall is not None else None,
        "trained_twice": len(prints) - len(set(prints)),
        "refused": sum(int(r.get("refused") or 0) for r in counted),
        "tool_errors": sum(int(r.get("tool_errors") or 0) for r in counted),
        "tokens_per_it": tokens / iterations if iterations else 0,
        "llm_s_per_it": sum(float(r.get("llm_seconds") or 0) for r in counted) / iterations if iterations else 0,
        "cached_share": cached / prompt if prompt and cached else None,
        "accepted": sum(t.get("verdict") == "accepted" for t in agent_trials),
        "best_composite": best.get("composite") if best else None,
        "best_feasible": bool(best and best.get("feasible")),
        "first_feasible": first_feasible, "wall_s": round(wall_s),
        "options": [t.get("knobs") for t in trials],
    }


def _agent_seconds(rows: list[dict], trials: list) -> float | None:
    """Wall seconds from the harness's baseline decided to the run's end: the agent's iterations
    (LLM calls, training, scoring), from the ledger's own timestamps."""
    from datetime import datetime

    base = next((t.get("finished_at") for t in trials if t.get("agent") == HARNESS), None)
    end = next((r.get("at") for r in reversed(rows) if r.get("event") == "run_end"), None)
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(base)).total_seconds()
    except (TypeError, ValueError):
        return None


def table(results: dict) -> str:
    cols = ["experiments", "exp_per_it", "distinct", "trained_twice", "replayed", "refused", "tool_errors",
            "tokens_per_it", "llm_s_per_it", "s_per_it", "cached_share", "accepted", "best_composite", "first_feasible",
            "wall_s"]
    fmt = lambda v: "-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| run | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    for model in sorted({n.rsplit("/", 1)[0] for n in results}):
        rs = [r for n, r in results.items() if n.rsplit("/", 1)[0] == model]
        mean = {c: statistics.mean(v for r in rs if isinstance(v := r.get(c), (int, float)))
                if any(isinstance(r.get(c), (int, float)) for r in rs) else None for c in cols}
        mean["first_feasible"] = f"{sum(r['first_feasible'] is not None for r in rs)}/{len(rs)} feasible"
        lines.append(f"| **{model} mean** | " + " | ".join(fmt(mean.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=1, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--llm-calls", type=int, default=6, help="LLM calls per iteration (the demo's)")
    p.add_argument("--size", default="default")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    out = (a.out or Path(tempfile.mkdtemp(prefix="mlipilot-agent-quality-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "agent_quality.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for seed in range(a.first_seed, a.first_seed + a.seeds):  # seed-major: an interrupted benchmark has every model's first seeds
        for model in a.models.split(","):
            name = f"{model}/seed{seed}"
            if name in results:
                continue
            run = out / model / f"seed{seed}"
            if not (run / "mlipilot.toml").exists():
                init_run("cu_emt", run, size=a.size, data_seed=0, progress=lambda s: None, base_seed=seed)
            print(f"[{name}] {a.iterations} iterations in {run}", flush=True)
            t0 = time.time()
            with open_agent(f"local:{model}", seed=seed, **LLM_OPTIONS) as agent:
                status = run_agent(load_run_config(run), agent,
                                   Budget(iterations=a.iterations, llm_calls_per_iteration=a.llm_calls),
                                   progress=lambda s, n=name: print(f"[{n}] {s}", flush=True))
            results[name] = {**summarise(run, time.time() - t0), "exit_status": status}
            results_path.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"results: {results_path}")


if __name__ == "__main__":
    main()
