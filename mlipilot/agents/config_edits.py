"""Setting keys in train/config.yaml through the same guarded tools an LLM uses."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from mlipilot.knobs import config_with
from mlipilot.knobs import load_knobs as load_knob_specs
from mlipilot.workspace_tools import CONFIG, Refused, WorkspaceTools


def read_config(tools: WorkspaceTools) -> dict:
    return yaml.safe_load(tools.resolve(CONFIG, write=False).read_text()) or {}


def set_config(tools: WorkspaceTools, updates: dict) -> str:
    """Rewrite the keys in place (keeping comments and order); append keys that are absent. Values
    already in place write nothing (the loop then refuses the no-op experiment)."""
    try:
        return tools.write_file(CONFIG, config_with(tools.resolve(CONFIG, write=False).read_text(), updates))
    except Refused as e:
        return str(e)


def load_knobs(tools: WorkspaceTools) -> dict[str, list]:
    """The knob space the random and optuna baselines sample: option -> choices (knobs.yaml)."""
    path = Path(tools.root) / "knobs.yaml"
    knobs = {k: list(v.choices) for k, v in load_knob_specs(path, with_mace=False).items() if v.choices}
    if not knobs:
        raise FileNotFoundError(f"{path}: this run declares no choices to sample; the random and optuna baselines "
                                "need an option with `choices:`")
    return knobs


def knob_values(tools: WorkspaceTools) -> dict | None:
    """The declared options' values in the current config (recorded per trial: the brief's table of
    configurations tried, and TPE learning from any agent)."""
    knobs = load_knob_specs(Path(tools.root) / "knobs.yaml", with_mace=False)
    if not knobs:
        return None
    try:
        cfg = read_config(tools)
    except (yaml.YAMLError, OSError):
        return None
    return {k: cfg.get(k) for k in knobs} if isinstance(cfg, dict) else None


def set_untried(tools: WorkspaceTools, draw: Callable[[int], dict], tries: int = 50) -> dict:
    """Apply draw(0), draw(1), ... until the config is one no trial has trained; the last draw
    stays when none is new (the loop then refuses the repeat)."""
    updates: dict = {}
    for i in range(tries):
        updates = draw(i)
        set_config(tools, updates)
        if tools.refusal() is None:
            break
    return updates
