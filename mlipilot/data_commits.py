"""Data commits on the run branch and their verdict semantics.

A data commit is written by the harness only (mlipilot.data_actions.actions), touches only
data/added/, and carries MLIPilot-Data-* trailers. Data and code move together: the next trial's
commit sits on top of the data commits made since the last trial, its parent for the verdict is the
commit before them (`trial_parent`), so a rejected or failed trial resets past its data too (the
rejected ref keeps both), and an iteration that ends without an experiment drops them
(`discard_pending`). Hooks: trial.py `_begin` (parent), its reject path and agent_loop's discard
call `sync_data_hashes`/`discard_pending`; preflight and WorkspaceTools.refusal accept a trial whose
only change is pending data."""

from __future__ import annotations

import io
from pathlib import Path

import git

from mlipilot.integrity import record_data_files

DATA_TRAILER = "MLIPilot-Data-Action"
ADDED_DIR = "data/added"
ADDED_VALID_DIR = "data/added/valid"  # frames added to the validation split (checkpoint choice, never trained on)
SPLITS = {"train": ADDED_DIR, "valid": ADDED_VALID_DIR}


def is_data_commit(commit: git.Commit) -> bool:
    return f"\n{DATA_TRAILER}: " in commit.message


def pending_data_commits(root: Path) -> list[str]:
    """The data commits at the tip of HEAD since the last trial (or init) commit, oldest first."""
    repo = git.Repo(root)
    out = []
    commit = repo.head.commit
    while is_data_commit(commit) and commit.parents:
        out.append(commit.hexsha)
        commit = commit.parents[0]
    return out[::-1]


def trial_parent(root: Path) -> str:
    """The commit a trial is judged against: HEAD before its pending data commits."""
    repo = git.Repo(root)
    pending = pending_data_commits(root)
    return repo.commit(pending[0]).parents[0].hexsha if pending else repo.head.commit.hexsha


def sync_data_hashes(store: Path, root: Path) -> dict[str, str]:
    """After git moved data/added (a revert, a reject): the recorded hashes follow what is there now."""
    return record_data_files(store, root, ADDED_DIR)


def discard_pending(root: Path, store: Path) -> list[str]:
    """Drop the data commits no trial followed (like edits without an experiment); returns them."""
    from mlipilot.git_history import RunRepo

    pending = pending_data_commits(root)
    if pending:
        repo = RunRepo(root)
        repo._git("reset", "--hard", "-q", trial_parent(root))
        repo._git("clean", "-fdq", "--", ADDED_DIR)
        sync_data_hashes(store, root)
    return pending


def frames_at(root: Path, commit: str, split: str = "train") -> dict[str, int]:
    """{data file: frames} the training of `commit` read: split 'train', data/train.xyz and every
    data/added/<n>.xyz; split 'valid', the validation frames added (data/added/valid/<n>.xyz)."""
    from ase.io import read

    repo = git.Repo(root)
    folder = SPLITS[split]
    names = [n for n in repo.git.ls_tree("-r", "--name-only", commit, "--", "data").splitlines()
             if (split == "train" and n == "data/train.xyz")
             or (n.endswith(".xyz") and Path(n).parent.as_posix() == folder)]
    out = {}
    for name in sorted(names, key=lambda n: (n != "data/train.xyz", _number(n))):
        text = repo.git.show(f"{commit}:{name}")
        try:
            out[name] = len(read(io.StringIO(text + "\n"), index=":", format="extxyz")) if text.strip() else 0
        except Exception:
            out[name] = -1  # unreadable: shown as such
    return out


def _number(name: str) -> int:
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else 1 << 30


def data_commits_between(root: Path, parent: str, commit: str) -> list[dict]:
    """The data commits a trial carried: [{commit, action, added, removed, file}]."""
    repo = git.Repo(root)
    out = []
    for c in repo.iter_commits(f"{parent}..{commit}", first_parent=True):
        if is_data_commit(c):
            t = dict(line.split(": ", 1) for line in c.message.splitlines() if line.startswith("MLIPilot-Data-"))
            out.append({"commit": c.hexsha, "action": t.get(DATA_TRAILER), "added": t.get("MLIPilot-Data-Frames-Added"),
                        "removed": t.get("MLIPilot-Data-Frames-Removed"), "file": t.get("MLIPilot-Data-File")})
    return out[::-1]


def carried_data(root: Path, commit: str) -> list[dict]:
    """The data commits right below a trial commit (those it was trained and judged with), from git alone."""
    repo = git.Repo(root)
    c = repo.commit(commit)
    if not c.parents:
        return []
    below, parent = c.parents[0], c.parents[0]
    while is_data_commit(parent) and parent.parents:
        parent = parent.parents[0]
    return data_commits_between(root, parent.hexsha, below.hexsha) if parent != below else []


def describe(d: dict) -> str:
    return (f"data {d['action']}: +{d.get('added') or 0} -{d.get('removed') or 0} frames"
            f" {d.get('file') or ''} (commit {d['commit'][:8]})")
