"""Setting keys in train/config.yaml through the same guarded tools an LLM uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlipilot.workspace_tools import WorkspaceTools

CONFIG = "train/config.yaml"


def read_config(tools: WorkspaceTools) -> dict:
    return yaml.safe_load(tools.resolve(CONFIG, write=False).read_text()) or {}


def set_config(tools: WorkspaceTools, updates: dict) -> str:
    """Rewrite the keys in place (keeping comments and order); append keys that are absent."""
    text = tools.resolve(CONFIG, write=False).read_text()
    lines = text.splitlines()
    for key, value in updates.items():
        rendered = f"{key}: {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        for i, line in enumerate(lines):
            if line.split(":", 1)[0].strip() == key and not line.lstrip().startswith("#"):
                lines[i] = rendered
                break
        else:
            lines.append(rendered)
    return tools.write_file(CONFIG, "\n".join(lines) + "\n")


def load_knobs(tools: WorkspaceTools) -> dict[str, list]:
    path = Path(tools.root) / "knobs.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this run declares no knob space; the random and optuna baselines need one")
    return yaml.safe_load(path.read_text())


def knob_values(tools: WorkspaceTools) -> dict | None:
    """The knob settings of the current config (recorded per trial so TPE can learn from any agent)."""
    try:
        knobs = load_knobs(tools)
    except FileNotFoundError:
        return None
    cfg = read_config(tools)
    return {k: cfg.get(k) for k in knobs}
