"""What an edit changes once parsed. A trial that would retrain what was already trained only
measures noise, so edits that change nothing training can see (comments, whitespace, formatting,
the harness-owned `seed:`) are refused before any job runs."""

from __future__ import annotations

import ast
from pathlib import Path

import git
import yaml

HARNESS_KEYS = ("seed",)  # set by the harness for every training; the config's value is overridden


def _normal_form(path: str, text: str) -> object:
    """What training sees of a file: parsed YAML without harness keys, a Python AST, else the text."""
    try:
        if path.endswith((".yaml", ".yml")):
            data = yaml.safe_load(text)
            return {k: v for k, v in data.items() if k not in HARNESS_KEYS} if isinstance(data, dict) else data
        if path.endswith(".py"):
            return ast.dump(ast.parse(text))
        return text.rstrip("\n")  # git show drops the last newline
    except (yaml.YAMLError, SyntaxError, ValueError):
        pass  # unparsable: compared as text, and training will say what is wrong
    return text


def effective_changes(root: Path, editable: tuple[str, ...], base: str = "HEAD") -> list[str]:
    """Editable files that differ from `base` in a way training can see."""
    repo = git.Repo(root)
    names = set(repo.git.diff("--name-only", "-z", base, "--", *editable).split("\0"))
    names |= set(repo.git.ls_files("--others", "--exclude-standard", "-z", "--", *editable).split("\0"))
    changed = []
    for name in sorted(n for n in names if n):
        new_path = Path(root) / name
        try:
            old = repo.git.show(f"{base}:{name}")
        except git.GitCommandError:
            changed.append(name)  # added
            continue
        if not new_path.is_file():
            changed.append(name)  # deleted
            continue
        new = new_path.read_text(errors="replace")
        if _normal_form(name, old) != _normal_form(name, new):
            changed.append(name)
    return changed
