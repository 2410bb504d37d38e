"""One launcher per run: `trial`, `run`, `noise` and `validate` hold the run's lock (a file in the
private store) for as long as they work on it. A second launcher is refused in one line naming the
holder; a holder that died (kill -9, a node lost) releases it with its process, so a restart takes
it over. Re-entrant within one process (`run` holds it while its trials take it again)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mlipilot.errors import MLIPilotError
from mlipilot.sanitize import sanitize

LOCK_FILE = "run.lock"
_held: dict[Path, tuple[int, int]] = {}  # store -> (fd, depth) of the locks this process holds
_guard = threading.Lock()


def holder(store: Path) -> dict | None:
    """Who holds (or last held) the run's lock, as it wrote itself down."""
    try:
        return json.loads((Path(store) / LOCK_FILE).read_text() or "null")
    except (OSError, json.JSONDecodeError):
        return None


@contextlib.contextmanager
def run_lock(store: Path, command: str | None = None) -> Iterator[None]:
    """Hold the run's lock for the block, or raise MLIPilotError naming the launcher that holds it."""
    store = Path(store).resolve()
    with _guard:
        if store in _held:
            fd, depth = _held[store]
            _held[store] = (fd, depth + 1)
        else:
            fd = _acquire(store, command)
            _held[store] = (fd, 1)
    try:
        yield
    finally:
        with _guard:
            fd, depth = _held[store]
            if depth > 1:
                _held[store] = (fd, depth - 1)
            else:
                del _held[store]
                os.close(fd)  # releases the flock


def _acquire(store: Path, command: str | None) -> int:
    fd = os.open(store / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise MLIPilotError(f"{store / LOCK_FILE}: cannot lock ({e.strerror}) — the store's filesystem must "
                                "support file locks (flock); put the store on a local or NFSv4 filesystem") from None
        h = holder(store) or {}
        who = ", ".join(f"{k} {sanitize(str(h[k]), 200)}" for k in ("pid", "host", "slurm_job", "command", "since")
                        if h.get(k))
        raise MLIPilotError(f"{store}: another launcher is working on this run ({who or 'holder unknown'}) — wait for "
                            "it to end or stop it; a launcher that died releases the run by itself") from None
    me = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID"),
          "command": command or " ".join(["mlipilot", *sys.argv[1:]])[:300],
          "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return fd
