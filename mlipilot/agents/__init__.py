"""Agents behind one interface (base.Agent): a litellm LLM, the non-LLM baselines, or your own.

An agent spec is one of: a name in AGENTS (one line per agent class), `local:<model>` (the embedded
offline LLM), `provider/model` (any model litellm speaks), or `module:Class` (your own Agent
subclass, constructed with `seed=`). `check_agent_spec` says which, or fails with the list, before
any run starts; `open_agent(spec)` is a context manager because `local:<model>` starts (and stops)
a local server.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
from typing import Iterator

from mlipilot.agents.base import Agent
from mlipilot.errors import MLIPilotError

AGENTS: dict[str, str] = {  # name -> "module:Class", constructed as Class(seed=seed)
    "expert": "mlipilot.agents.expert:ExpertAgent",
    "random": "mlipilot.agents.random_search:RandomAgent",
    "optuna": "mlipilot.agents.optuna_search:OptunaAgent",
    "al": "mlipilot.agents.al:ALAgent",
}
BASELINES = tuple(AGENTS)
SPEC_FORMS = "a name (" + ", ".join(AGENTS) + "), local:<model>, provider/model (litellm) or package.module:Class"


def _load_class(path: str, spec: str) -> type[Agent]:
    module, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise MLIPilotError(f"--agent {spec}: cannot import {path} ({e}) — check the module path and PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise MLIPilotError(f"--agent {spec}: {path} is not a subclass of mlipilot.agents.base.Agent — derive from it")
    return cls


def check_agent_spec(spec: str) -> str:
    """The spec's kind ('registered', 'local', 'litellm', 'class'); an unknown bare name fails here
    with the nearest registered one, instead of as a provider error mid-run."""
    if spec in AGENTS:
        return "registered"
    if spec.startswith("local:"):
        return "local"
    if "/" in spec:
        return "litellm"
    module, _, name = spec.partition(":")
    if name and all(part.isidentifier() for part in [*module.split("."), name]):
        _load_class(spec, spec)
        return "class"
    near = difflib.get_close_matches(spec, list(AGENTS), n=1)
    raise MLIPilotError(f"--agent {spec}: unknown agent — " + (f"did you mean '{near[0]}'? " if near else "")
                        + f"use {SPEC_FORMS}")


@contextlib.contextmanager
def open_agent(spec: str, seed: int = 0, api_base: str | None = None, api_key_env: str | None = None,
               **llm_options) -> Iterator[Agent]:
    kind = check_agent_spec(spec)
    if kind in ("registered", "class"):
        yield _load_class(AGENTS.get(spec, spec), spec)(seed=seed)
    elif kind == "local":
        from mlipilot.agents.llm import LLMAgent
        from mlipilot.local_llm.server import LocalLLMServer

        with LocalLLMServer(spec.split(":", 1)[1]) as server:
            agent = LLMAgent(f"openai/{server.model.alias}", api_base=server.api_base, seed=seed, **llm_options)
            agent.name = spec
            yield agent
    else:
        from mlipilot.agents.llm import LLMAgent

        yield LLMAgent(spec, api_base=api_base, api_key_env=api_key_env, seed=seed, **llm_options)
