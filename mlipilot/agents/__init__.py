"""Agents behind one interface (base.Agent): a litellm LLM, the non-LLM baselines, or your own.

An agent spec is one of: a name in AGENTS (one line per agent class), `local:<model>` (the embedded
offline LLM), `provider/model` (any model litellm speaks), or `module:Class` (your own Agent
subclass, constructed with `seed=`). `check_agent_spec` says which, or fails with the list, before
any run starts; `open_agent(spec)` is a context manager because `local:<model>` starts (and stops)
a local server.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from mlipilot.agent_specs import AGENT_CLASSES, FORMS, SPEC_FORMS, agent_kind  # noqa: F401 (SPEC_FORMS: public)
from mlipilot.agents.base import Agent
from mlipilot.registry import Registry, UnknownName

AGENTS: Registry[type[Agent]] = Registry("agent", AGENT_CLASSES, dotted=True, forms=FORMS,
                                         check=lambda cls: None if isinstance(cls, type) and issubclass(cls, Agent)
                                         else "is not a subclass of mlipilot.agents.base.Agent", check_fix="derive from it")
BASELINES = tuple(AGENTS)


def _load_class(spec: str, where: str = "--agent") -> type[Agent]:
    try:
        return AGENTS.resolve(spec)
    except UnknownName as e:
        raise UnknownName(f"{where}: {e.problem}" if where else e.problem, e.fix) from None


def check_agent_spec(spec: str, load: bool = True, where: str = "--agent") -> str:
    """The spec's kind ('registered', 'local', 'litellm', 'class'); an unknown bare name fails here
    (UnknownName, its problem prefixed with `where`) with the nearest registered one, instead of as a
    provider error mid-run. `load=False` (a config file being read) checks the form without importing
    a user's class."""
    kind = agent_kind(spec, where)
    if kind == "class" and load:
        _load_class(spec, where)
    return kind


@contextlib.contextmanager
def open_agent(spec: str, seed: int = 0, api_base: str | None = None, api_key_env: str | None = None,
               **llm_options) -> Iterator[Agent]:
    kind = check_agent_spec(spec)
    if kind in ("registered", "class"):
        yield _load_class(spec)(seed=seed)
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
