"""What an edit changes once parsed. A trial that would retrain what was already trained only
measures noise, so edits that change nothing training can see (comments, whitespace, formatting,
the harness-owned `seed:`) and configurations an earlier trial already trained are refused before
any job runs."""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

import git
import yaml

from mlipilot.records import TrialRecord

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


def _fingerprint(forms: dict[str, object]) -> str:
    return hashlib.sha256(repr(sorted(forms.items())).encode()).hexdigest()


def fingerprint_worktree(root: Path, editable: tuple[str, ...]) -> str:
    """What training would see of the editable files now (tracked and new, parsed)."""
    repo = git.Repo(root)
    names = repo.git.ls_files("-co", "--exclude-standard", "-z", "--", *editable).split("\0")
    forms = {}
    for name in sorted({n for n in names if n}):
        path = Path(root) / name
        if path.is_file():
            forms[name] = _normal_form(name, path.read_text(errors="replace"))
    return _fingerprint(forms)


@functools.lru_cache(maxsize=4096)
def fingerprint_commit(root: Path, editable: tuple[str, ...], commit: str) -> str:
    """The same for a commit (immutable, so cached): the configuration a trial trained."""
    repo = git.Repo(root)
    names = [n for n in repo.git.ls_tree("-r", "--name-only", commit, "--", *editable).splitlines() if n]
    return _fingerprint({n: _normal_form(n, repo.git.show(f"{commit}:{n}")) for n in names})


def repeat_of(root: Path, editable: tuple[str, ...], trials: list[TrialRecord]) -> int | None:
    """The earlier trial whose trained configuration the working tree reproduces, if any: training
    it again would only measure seed noise (that is what `mlipilot noise` is for)."""
    now = fingerprint_worktree(root, editable)
    for t in trials:
        try:
            if t.commit and fingerprint_commit(Path(root), tuple(editable), t.commit) == now:
                return int(t.trial)
        except git.GitCommandError:
            continue  # a commit this clone lacks cannot be compared
    return None


def same_once_parsed(path: str, old: str, new: str) -> bool:
    """Whether an edit of one file changes nothing training would see."""
    return _normal_form(path, old) == _normal_form(path, new)
