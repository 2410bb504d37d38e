"""Extract a trial's `git archive` into a job folder, safely on every Python we support: the "data"
extraction filter (PEP 706) where the interpreter has it (3.11.4+), else the same rules by hand —
Debian 12's Python is 3.11.2. Standard library only."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path


class UnsafeArchive(ValueError):
    """A member would land outside the destination, or is not a plain file, folder or inside link."""


def _checked(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """PEP 706's "data" rules for the members `git archive` can hold: plain files and folders, and
    symbolic links that stay inside `dest`; no absolute names, no '..', no devices or hard links."""
    dest = Path(os.path.realpath(dest))
    members = []
    for m in tar.getmembers():
        target = Path(os.path.realpath(dest / m.name))
        if os.path.isabs(m.name) or (target != dest and dest not in target.parents):
            raise UnsafeArchive(f"{m.name!r} would be written outside {dest}")
        if m.issym():
            link = Path(os.path.realpath(target.parent / m.linkname))
            if os.path.isabs(m.linkname) or (link != dest and dest not in link.parents):
                raise UnsafeArchive(f"{m.name!r} links outside {dest} ({m.linkname!r})")
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"{m.name!r} is not a plain file or folder")
        m.mode = (m.mode | 0o600) & 0o755 if m.isfile() else 0o755  # as "data": no set-id bits, owner rw
        m.uid = m.gid = 0
        m.uname = m.gname = ""
        members.append(m)
    return members


def extract(tar: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:  # 3.11.0-3.11.3: no filter argument
        tar.extractall(dest, members=_checked(tar, Path(dest)))
