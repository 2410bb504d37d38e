"""Agents behind one interface (base.Agent): a litellm LLM, or the non-LLM baselines.

`open_agent(spec)` is a context manager because `local:<model>` starts (and stops) a local server.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from mlipilot.agents.base import Agent

BASELINES = ("expert", "random", "optuna")


@contextlib.contextmanager
def open_agent(spec: str, seed: int = 0, api_base: str | None = None, api_key_env: str | None = None,
               **llm_options) -> Iterator[Agent]:
    if spec == "expert":
        from mlipilot.agents.expert import ExpertAgent

        yield ExpertAgent()
    elif spec == "random":
        from mlipilot.agents.random_search import RandomAgent

        yield RandomAgent(seed)
    elif spec == "optuna":
        from mlipilot.agents.optuna_search import OptunaAgent

        yield OptunaAgent(seed)
    elif spec.startswith("local:"):
        from mlipilot.agents.llm import LLMAgent
        from mlipilot.models.local_llm import LocalLLMServer

        with LocalLLMServer(spec.split(":", 1)[1]) as server:
            agent = LLMAgent(f"openai/{server.model.alias}", api_base=server.api_base, seed=seed, **llm_options)
            agent.name = spec
            yield agent
    else:
        from mlipilot.agents.llm import LLMAgent

        yield LLMAgent(spec, api_base=api_base, api_key_env=api_key_env, seed=seed, **llm_options)
