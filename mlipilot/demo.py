"""`mlipilot demo`: the README's main job. Makes a Cu EMT run and lets an agent do a few
experiments: by default the embedded offline LLM (Qwen2.5-Coder-0.5B through a local
OpenAI-compatible server), or any agent spec (`--agent expert`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlipilot.agent_loop import Budget, run_agent
from mlipilot.agents import open_agent
from mlipilot.errors import MLIPilotError
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run

DEFAULT_AGENT = "local:qwen2.5-coder-0.5b"
# wall minutes per iteration on a 2-core machine, measured by benchmarks/cu_emt/agent_quality.py (one
# training + scoring + the agent's LLM calls); the harness's baseline is one training without an agent
MINUTES_PER_ITERATION = {"expert": 1.5, "local:qwen2.5-coder-0.5b": 2.3, "local:qwen2.5-coder-1.5b": 4.0}
BASELINE_MINUTES = 1.5
LLM_CALLS_PER_ITERATION = 6
LLM_OPTIONS = {"max_iteration_tokens": 20_000}  # an LLM agent's iteration stays within 20 k tokens (issue 35)


def estimate_minutes(agent: str, iterations: int, size: str = "default") -> float | None:
    """How long the demo should take on 2 cores (None for agents not measured here)."""
    per = MINUTES_PER_ITERATION.get(agent)
    if per is None or size != "default":
        return None
    return BASELINE_MINUTES + iterations * per


def run_demo(directory: Path | None = None, agent: str = DEFAULT_AGENT, iterations: int = 3,
             size: str = "default", executor: str = "local", progress=print, seed: int = 0) -> str:
    """`seed`: the agent's (an LLM samples each iteration with a seed derived from it and the iteration)."""
    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="mlipilot-demo-")) / "run"
    t0 = time.time()
    if not (directory / "mlipilot.toml").exists():
        init_run("cu_emt", directory, executor=executor, size=size, progress=progress)
    cfg = load_run_config(directory)
    minutes = estimate_minutes(agent, iterations, size)
    if minutes is not None:
        progress(f"this takes about {minutes:.0f} minutes on 2 CPU cores: the harness's baseline, then {iterations} "
                 f"iterations of {agent} (each: the agent's LLM calls, one training, one scoring)")
    try:
        with open_agent(agent, seed=seed, **LLM_OPTIONS) as a:  # (scripted agents take no LLM options)
            progress(f"agent {a.name}: {iterations} iterations on {directory}")
            status = run_agent(cfg, a, Budget(iterations=iterations, llm_calls_per_iteration=LLM_CALLS_PER_ITERATION),
                               progress=progress)
    except MLIPilotError as e:
        if agent.startswith("local:"):
            raise MLIPilotError(f"{e}. Or run the demo without the LLM: mlipilot demo --agent expert") from None
        raise
    progress(f"demo finished in {time.time() - t0:.0f} s ({status}); inspect it with:\n"
             f"  mlipilot status --run {directory}\n"
             f"  git -C {directory} log --format='%h %s%n    %(trailers:key=MLIPilot-Verdict,valueonly,separator=)'")
    return status
