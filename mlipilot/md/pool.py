"""Independent MD runs on every core the job was given: one forked child per run (one thread
each), at most `cores` at a time, results back over a pipe in the runs' order.

Forked after the model is loaded, so children share it copy-on-write and start at once; plain
os.fork and pipes (no multiprocessing semaphores: a sandbox's minimal /dev has no /dev/shm).
Each run is seeded on its own, so the results do not depend on how many cores ran them.
"""

from __future__ import annotations

import os
import pickle
import select
import sys
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def job_cores() -> int:
    """Cores this process may run on (its CPU affinity: what Slurm or taskset gave the job), capped
    by SLURM_CPUS_PER_TASK and MLIPILOT_MD_WORKERS where set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    for var in ("SLURM_CPUS_PER_TASK", "MLIPILOT_MD_WORKERS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            n = min(n, int(os.environ[var]))
    return max(1, n)


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or odd stream must not break the run
            pass


def _child(fn: Callable[[], T], w: int) -> None:
    try:
        _die_with_parent()
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        try:
            payload = pickle.dumps((True, fn()))
        except BaseException as e:  # noqa: BLE001 -- reported to the parent, which raises it
            payload = pickle.dumps((False, f"{type(e).__name__}: {e}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(w, view):]
    finally:
        _flush()  # what the child printed (the parent flushed its own before the fork)
        os._exit(0)  # no atexit handlers


def run_all(fns: Sequence[Callable[[], T]], cores: int | None = None) -> Iterator[T]:
    """fns[i]() in order, running up to `cores` of them at once in forked children (in this process
    when one core or one function). The first children start now, before the first value is asked
    for: the caller may work beside them."""
    return _in_order(run_each(fns, cores))


def _in_order(each: Iterator[tuple[int, T]]) -> Iterator[T]:
    done: dict[int, T] = {}
    nxt = 0
    for i, value in each:
        done[i] = value
        while nxt in done:
            yield done.pop(nxt)
            nxt += 1


def run_each(fns: Sequence[Callable[[], T]], cores: int | None = None) -> Iterator[tuple[int, T]]:
    """(i, fns[i]()) as each finishes (a caller that saves results as they come loses none to a slow
    sibling), up to `cores` at once in forked children started in list order, the first ones now."""
    cores = job_cores() if cores is None else cores
    if cores <= 1 or len(fns) <= 1 or not hasattr(os, "fork"):
        return ((i, fn()) for i, fn in enumerate(fns))
    return Workers(fns, cores)


class Workers:
    """Forked children running `fns`, at most `cores` alive; iterate for (i, value) as they end.
    Children left when iteration stops early (or `close`, or garbage collection) are killed."""

    def __init__(self, fns: Sequence[Callable[[], T]], cores: int) -> None:
        self.fns, self.cores = fns, cores
        self.pending, self.live = list(range(len(fns))), {}
        self._fill()

    def _fill(self) -> None:
        while self.pending and len(self.live) < self.cores:
            i = self.pending.pop(0)
            r, w = os.pipe()
            _flush()  # else the child inherits, and at its exit repeats, the parent's unwritten output
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _child(self.fns[i], w)
            os.close(w)
            self.live[r] = (pid, i, bytearray())

    def __iter__(self) -> Iterator[tuple[int, T]]:
        try:
            while self.pending or self.live:
                self._fill()
                ready, _, _ = select.select(list(self.live), [], [])
                for fd in ready:
                    chunk = os.read(fd, 1 << 20)
                    if chunk:
                        self.live[fd][2].extend(chunk)
                        continue
                    pid, i, buf = self.live.pop(fd)
                    os.close(fd)
                    _, status = os.waitpid(pid, 0)
                    if not buf:
                        raise RuntimeError(f"MD worker for run {i} died (wait status {status})")
                    ok, value = pickle.loads(bytes(buf))
                    if not ok:
                        raise RuntimeError(f"MD worker for run {i} failed: {value}")
                    yield i, value
        finally:
            self.close()

    def close(self) -> None:
        self.pending.clear()
        for fd, (pid, _, _) in list(self.live.items()):
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
            os.close(fd)
        self.live.clear()

    def __del__(self) -> None:
        self.close()
