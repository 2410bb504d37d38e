"""Hashes of every protected file (all files outside the editable paths), kept in the private store."""

from __future__ import annotations

import hashlib
import json
import os
import stat
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


DATA_FILES = "data_files.json"  # the harness's own additions (data/added/*.xyz), rewritten by each data commit


def data_file_hashes(store: Path) -> dict[str, str]:
    """sha256 of the files the data actions wrote (mlipilot.data_actions); protected like the rest."""
    path = Path(store) / DATA_FILES
    return json.loads(path.read_text()) if path.is_file() else {}


def record_data_files(store: Path, root: Path, folder: str = "data/added") -> dict[str, str]:
    """Record the hashes of the harness-written data files now in `root` (called by the harness right
    after it writes or reverts them, never by agent code); protected.json stays as sealed at init."""
    base = Path(root) / folder
    hashes = {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(base.rglob("*.xyz")) if p.is_file()}
    (Path(store) / DATA_FILES).write_text(json.dumps(hashes, indent=1, sort_keys=True))
    return hashes


def integrity_problem(root: Path, store: Path, editable: tuple[str, ...]) -> str | None:
    """None when every protected file matches its recorded hash, else a one-line description."""
    recorded = {**json.loads((store / "protected.json").read_text()), **data_file_hashes(store)}
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


# -- large data files: kept out of the run's git, hashed in a tracked manifest ----------------------
LARGE_DATA_BYTES = 50 * 2**20  # above this a data file is git-ignored: every clone and push would carry it
LARGE_DATA_MANIFEST = "data/large_files.json"  # tracked and protected: {path: {"bytes": n, "sha256": hex}}


def large_files(root: Path) -> dict[str, dict]:
    """The run's git-ignored data files and their recorded size and sha256 (none for most runs)."""
    path = Path(root) / LARGE_DATA_MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def large_file_problem(path: Path, rel: str, entry: dict) -> str | None:
    if path.is_symlink() or not path.is_file():
        return f"{rel}: large data file (kept out of git) is missing — restore the original (sha256 in {LARGE_DATA_MANIFEST})"
    if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
        return f"{rel}: large data file (kept out of git) changed since init — restore the original (sha256 in {LARGE_DATA_MANIFEST})"
    return None


def large_data_problem(root: Path) -> str | None:
    """None when every large data file matches the manifest (itself protected), else a one-line description."""
    for rel, entry in large_files(root).items():
        if problem := large_file_problem(Path(root) / rel, rel, entry):
            return problem
    return None


# -- the store's seal: what scoring trusts, hashed at init ------------------------------------------
SEAL_FILE = "seal.json"
SEALED = ("holdout.xyz", "scorecard.yaml", "protected.json")
VALIDATION_SPEC = "validation.yaml"  # the private validation spec (mlipilot validate)
DATA_SEED = "data_seed.json"  # a generated benchmark's data seed: whoever knows it can regenerate the holdout
SEALED_IF_PRESENT = ("md_structures.xyz", VALIDATION_SPEC, DATA_SEED, "foundation.json",
                     "property_reference.json")  # a benchmark's own MD starts; its
# validation; its data seed; its foundation models; the property metrics' reference values
SEAL_TRAILER = "MLIPilot-Seal-SHA256"


def seal_digest(hashes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


def seal_store(store: Path, hide: list[str]) -> dict:
    """Hash the files scoring trusts; `hide` lists the paths the training sandbox must not see."""
    names = list(SEALED) + [n for n in SEALED_IF_PRESENT if (store / n).is_file()]
    # foundation models the user supplied: what training starts from is as sealed as what scores it
    names += sorted(str(p.relative_to(store)) for p in (store / "foundation").glob("*.model"))
    seal = {"files": {name: sha256_file(store / name) for name in names}, "hide": hide}
    (store / SEAL_FILE).write_text(json.dumps(seal, indent=1, sort_keys=True))
    return seal


def load_seal(store: Path) -> dict:
    path = store / SEAL_FILE
    return json.loads(path.read_text()) if path.is_file() else {"files": {}, "hide": []}


def seal_problem(root: Path, store: Path) -> str | None:
    """None when the store's sealed files match both seal.json and the digest in the run's first
    commit (which the training job cannot rewrite), else a one-line description."""
    seal = load_seal(store)
    if not seal["files"]:
        return None  # a run made before stores were sealed
    repo = git.Repo(root)
    first = repo.git.rev_list("--max-parents=0", "HEAD").split()[0]
    recorded = repo.git.log("-1", f"--format=%(trailers:key={SEAL_TRAILER},valueonly)", first).strip()
    if recorded and recorded != seal_digest(seal["files"]):
        return f"{store / SEAL_FILE} does not match the seal in the run's first commit"
    changed = [n for n, h in seal["files"].items() if not (store / n).is_file() or sha256_file(store / n) != h]
    if changed:
        return f"the private store's {', '.join(changed)} changed since init (seal in {store / SEAL_FILE})"
    return None


GIT_CONTROL_FILES = (".gitignore", ".gitattributes", ".gitmodules")


def editable_problem(root: Path, editable: tuple[str, ...]) -> str | None:
    """What a trial refuses in the editable paths: files git would hide or rewrite (ignore and
    attribute files), links (symbolic or hard) and special files. Training runs the committed tree,
    so these could only make the audit show something other than what ran."""
    for e in editable:
        base = root / e
        if not base.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                rel = p.relative_to(root).as_posix()
                st = p.lstat()
                if name in GIT_CONTROL_FILES:
                    return f"{rel}: git control files are refused in the editable paths — delete it"
                if stat.S_ISLNK(st.st_mode):
                    return f"{rel}: symbolic links are refused in the editable paths — replace it with a file"
                if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                    return f"{rel}: a hard link (it shares its content with another file) — replace it with a copy"
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    return f"{rel}: not a regular file (fifo, socket or device) — delete it"
    return None
