"""Hashes of every protected file (all files outside the editable paths), kept in the private store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import git


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_editable(rel: str, editable: tuple[str, ...]) -> bool:
    return any(rel == e.rstrip("/") or rel.startswith(e.rstrip("/") + "/") for e in editable)


def protected_hashes(root: Path, editable: tuple[str, ...]) -> dict[str, str]:
    """sha256 of tracked and untracked (not ignored) files outside the editable paths."""
    repo = git.Repo(root)
    files = repo.git.ls_files("--cached", "--others", "--exclude-standard", "-z").split("\0")
    out = {}
    for rel in sorted(set(f for f in files if f)):
        if is_editable(rel, editable):
            continue
        p = root / rel
        out[rel] = sha256_file(p) if p.is_file() or p.is_symlink() and p.exists() else "missing"
    return out


def save_hashes(store: Path, hashes: dict[str, str]) -> None:
    (store / "protected.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))


def integrity_problem(root: Path, store: Path, editable: tuple[str, ...]) -> str | None:
    """None when every protected file matches its recorded hash, else a one-line description."""
    recorded = json.loads((store / "protected.json").read_text())
    current = protected_hashes(root, editable)
    changed = sorted(k for k in recorded if current.get(k) != recorded[k])
    added = sorted(k for k in current if k not in recorded)
    if not changed and not added:
        return None
    parts = []
    if changed:
        parts.append("protected file(s) changed or removed: " + ", ".join(changed[:5]))
    if added:
        parts.append("file(s) added outside the editable paths: " + ", ".join(added[:5]))
    return "; ".join(parts)
