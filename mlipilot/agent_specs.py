"""Agent specs as configuration reads them: the registered agents by name (one line per agent class,
as "module:Class" strings, never imported here) and the forms a spec may take. `mlipilot.agents`
loads and constructs them; this module only says whether a spec is well-formed, so mlipilot.toml
and `--agent` are checked before any run without configuration importing the agents."""

from __future__ import annotations

from mlipilot.registry import Registry, UnknownName, is_dotted

AGENT_CLASSES: dict[str, str] = {  # name -> "module:Class", constructed as Class(seed=seed)
    "expert": "mlipilot.agents.expert:ExpertAgent",
    "random": "mlipilot.agents.random_search:RandomAgent",
    "optuna": "mlipilot.agents.optuna_search:OptunaAgent",
    "al": "mlipilot.agents.al:ALAgent",
}
FORMS = ", local:<model>, provider/model (litellm) or package.module:Class"
SPEC_FORMS = "a name (" + ", ".join(AGENT_CLASSES) + "), local:<model>, provider/model (litellm) or package.module:Class"


def agent_kind(spec: str, where: str = "--agent") -> str:
    """The spec's kind ('registered', 'local', 'litellm', 'class') from its form alone; an unknown bare
    name fails (UnknownName, its problem prefixed with `where`) with the nearest registered one."""
    if spec in AGENT_CLASSES:
        return "registered"
    if spec.startswith("local:"):
        return "local"
    if "/" in spec:
        return "litellm"
    if ":" in spec and is_dotted(spec):
        return "class"
    e = Registry("agent", AGENT_CLASSES, forms=FORMS).unknown(spec)
    raise UnknownName(f"{where}: {e.problem}" if where else e.problem, e.fix)
