"""How many threads a training job may use (issue 37): the cores it holds, less what is busy.

A job holds the CPUs of its affinity mask (Slurm's cpuset: `cpus_per_task`; a local job: the machine).
Locally, other jobs of this user claim their threads in a per-user folder while they train (a claim of a
dead process counts for nothing), and the machine's idle cores are sampled at the start, so a busy
2-core box (where two threads per process were 10-18x slower) still trains on one thread. Scoring and
MD stay on one thread per process (mlipilot.md.pool, scorecard.evaluate)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

SAMPLE_S = 0.25  # the idle sample at the start of a training job
ENV = "MLIPILOT_TRAIN_THREADS"  # a fixed count (tests, or a user who knows better): wins over the rest


def held_cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _cpu_times(cores: set[int]) -> tuple[float, float] | None:
    """(idle, total) jiffies summed over `cores`, from /proc/stat; None where it cannot be read."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    idle = total = 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
            continue
        v = [float(x) for x in fields[:8]]
        idle += v[3] + v[4]  # idle + iowait
        total += sum(v)
    return (idle, total) if total else None


def idle_cores(cores: set[int], sample_s: float = SAMPLE_S) -> float:
    """How many of `cores` were idle over `sample_s` seconds (all of them where /proc/stat is missing)."""
    a = _cpu_times(cores)
    time.sleep(sample_s)
    b = _cpu_times(cores)
    if a is None or b is None or b[1] <= a[1]:
        return float(len(cores))
    return len(cores) * (b[0] - a[0]) / (b[1] - a[1])


def _claims_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"mlipilot-cores-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claimed(d: Path, cores: set[int]) -> int:
    """Threads claimed by live training jobs on the same cores (another Slurm cpuset does not count)."""
    n = 0
    for f in d.glob("*.json"):
        try:
            c = json.loads(f.read_text())
            pid, threads, on = int(c["pid"]), int(c["threads"]), set(c["cores"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid != os.getpid() and _alive(pid) and on & cores:
            n += threads
        elif not _alive(pid):
            f.unlink(missing_ok=True)
    return n


class TrainingThreads:
    """The thread count for one training, claimed until `release()`: the held cores less other
    trainings' claims, no more than the idle cores sampled now (rounded), at least 1."""

    def __init__(self) -> None:
        self.claim: Path | None = None
        fixed = os.environ.get(ENV, "").strip()
        if fixed:
            self.threads = max(1, int(fixed))
            return
        cores = held_cores()
        d = _claims_dir()
        with open(d / ".lock", "a+") as lock:  # one job decides at a time: two starting together split the cores
            fcntl.flock(lock, fcntl.LOCK_EX)
            free = len(cores) - _claimed(d, cores)
            self.threads = max(1, min(free, int(idle_cores(cores) + 0.5)))
            self.claim = d / f"{os.getpid()}.json"
            self.claim.write_text(json.dumps({"pid": os.getpid(), "threads": self.threads, "cores": sorted(cores)}))

    def release(self) -> None:
        if self.claim is not None:
            self.claim.unlink(missing_ok=True)
            self.claim = None
