"""How many threads a training job may use (issue 37): the cores it holds, less what is busy.

A job holds the CPUs of its affinity mask (Slurm's cpuset: `cpus_per_task`; a local job: the machine).
Locally, other jobs of this user claim their threads in a per-user folder while they train (a claim of a
dead process counts for nothing), and the machine's idle cores are sampled at the start, so a busy
2-core box (where two threads per process were 10-18x slower) still trains on one thread. Scoring and
MD stay on one thread per process (mlipilot.md.pool, scorecard.evaluate)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SAMPLE_S = 0.25  # the idle sample at the start of a training job
ENV = "MLIPILOT_TRAIN_THREADS"  # a fixed count (tests, or a user who knows better): wins over the rest
SHARE_ENV = "MLIPILOT_TRAIN_SHARE"  # trainings this launcher runs at once (--parallel, bench --parallel-runs)
# Measured on 2 cores, cu_emt baseline training (train.py s): 1 thread 54-57; 2 threads 36 (quiet, through the
# harness: the trial 68 -> 48 s). With a 1-thread training started beside a 2-thread one, the 2-thread one took
# ~500 s: OpenMP's spinning threads and a third thread on 2 cores. Hence the idle sample at the start and the
# launcher's share. Capping libgomp's spin (GOMP_SPINCOUNT=10000) would limit that case to 116 s but cost the
# quiet harness run its gain (53 s instead of 36: the nice-19 imports beside training take the cores the
# sleeping threads leave), and OMP_WAIT_POLICY=PASSIVE keeps only 54 -> 51 s; neither is set.


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
    """This user's claims folder; OSError unless it is a real folder this user owns, private (another user
    could have made it, or a link to elsewhere, in a shared /tmp)."""
    import stat

    d = Path(tempfile.gettempdir()) / f"mlipilot-cores-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{d} is not a private folder of this user")
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
        if not _alive(pid):
            f.unlink(missing_ok=True)
        elif pid != os.getpid() and on & cores:
            n += threads
    return n


class TrainingThreads:
    """The thread count for one training, claimed until `release()`: the held cores less other
    trainings' claims, no more than the idle cores sampled now (rounded), at least 1."""

    def __init__(self) -> None:
        self.claim: Path | None = None
        self.share = 1
        fixed = os.environ.get(ENV, "").strip()
        if fixed:
            self.threads = max(1, int(fixed))
            return
        cores = held_cores()
        in_slurm = bool(os.environ.get("SLURM_JOB_ID"))  # its cpuset is this job's alone
        share = 1 if in_slurm else max(1, int(os.environ.get(SHARE_ENV, "1") or 1))
        try:
            d = _claims_dir()
            with open(d / ".lock", "a+") as lock:  # one job decides at a time: two starting together split the cores
                fcntl.flock(lock, fcntl.LOCK_EX)
                free = min(len(cores) // share, len(cores) - _claimed(d, cores))
                self.threads = max(1, min(free, int(idle_cores(cores) + 0.5)))
                self.claim = d / f"{os.getpid()}.json"
                self.claim.write_text(json.dumps({"pid": os.getpid(), "threads": self.threads, "cores": sorted(cores)}))
        except OSError:  # no writable temporary folder (or a foreign one): the idle sample alone, no claim
            self.claim = None
            self.threads = max(1, min(len(cores) // share, int(idle_cores(cores) + 0.5)))

    def env(self) -> dict[str, str]:
        """The training process's thread variables."""
        return {k: str(self.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

    def release(self) -> None:
        if self.claim is not None:
            self.claim.unlink(missing_ok=True)
            self.claim = None


@contextlib.contextmanager
def sharing(k: int) -> Iterator[None]:
    """While a launcher runs `k` trainings at once, each takes at most 1/k of the cores (the jobs inherit
    the variable; claims alone would let the first take them all before the others start)."""
    if k <= 1:
        yield
        return
    before = os.environ.get(SHARE_ENV)
    os.environ[SHARE_ENV] = str(int(before or 1) * k)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SHARE_ENV, None)
        else:
            os.environ[SHARE_ENV] = before
