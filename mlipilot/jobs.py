"""The job runner: training and scoring as submitit jobs, on the executors of mlipilot.executors.

Job functions live here at module level so submitit can pickle them; they import nothing heavy
at module import time. Each enforces its own time limit so timeouts behave the same whatever
the executor.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Callable

import submitit

from mlipilot.executors import get_executor
from mlipilot.records import FailureKind
from mlipilot.sandbox import SandboxError

MODEL_DIR = "model"  # a trial folder's copy of the exported model: what scoring and validation read
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class JobFailed(RuntimeError):
    """Training or scoring ended without a result (crash, timeout, missing model)."""

    def __init__(self, message: str, detail: str | None = None, kind: FailureKind | str | None = None):
        super().__init__(message)
        self.detail = detail  # e.g. the job's traceback
        self.kind = FailureKind(kind) if kind else None


def make_executor(kind: str, folder: Path, timeout_min: float, slurm: dict | None = None,
                  stage: str = "train") -> submitit.Executor:
    """An executor named by configuration (never auto-detected; see mlipilot.executors). `slurm` holds
    the executor options read from mlipilot.toml; `stage` (train, score, validate, label, launcher) picks
    the job's size (mlipilot.executors.slurm)."""
    return get_executor(kind).make(folder, timeout_min, slurm or {}, stage)


def attach(kind: str, folder: Path, job_id: str) -> submitit.Job:
    """Re-attach to a job submitted by an earlier (killed) launcher."""
    return get_executor(kind).attach(folder, job_id)


def _as_result(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Return failures as data ({"error": ...}) instead of raising: submitit's DebugExecutor would
    open a post-mortem debugger on an exception, and every executor then reports alike."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> dict:
        started = time.time()
        try:
            return fn(*args, **kwargs)
        except JobFailed as e:
            return {"error": str(e), "kind": e.kind and str(e.kind), "started": started,
                    "seconds": time.time() - started}
        except SandboxError as e:
            return {"error": f"{type(e).__name__}: {e}", "kind": str(FailureKind.SANDBOX), "started": started,
                    "seconds": time.time() - started}
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                    "started": started, "seconds": time.time() - started}

    return wrapper


def _limit_hint(rc: int, log: Path, limits) -> str:
    """Which sandbox limit a failed job ran into, as far as its exit and log tell ('' when none)."""
    import signal

    text = log.read_text(errors="replace")[-20000:] if log.exists() else ""
    if rc in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or "File too large" in text:
        return f" (a file exceeded the sandbox's limit file_gb = {limits.file_gb:g})"
    if "MemoryError" in text or "Cannot allocate memory" in text or "std::bad_alloc" in text:
        return f" (memory: the sandbox's limit is memory_gb = {limits.memory_gb:g} per process)"
    if "Resource temporarily unavailable" in text and ("fork" in text or "Popen" in text or "thread" in text):
        return f" (processes: the sandbox's limit is processes = {limits.processes})"
    if "No space left on device" in text:
        return (f" (/tmp or /dev/shm: the sandbox's limits are tmp_mb = {limits.tmp_mb}, "
                f"shm_mb = {limits.shm_mb})")
    return ""


def keep_logs(out: Path, dest: Path, max_files: int = 20, max_bytes: int = 10 << 20) -> None:
    """Copy the job's `*.log` files (regular files, links not followed, size-capped) out of its output
    folder before it is removed: the training's own record, for `mlipilot show` and people."""
    import shutil
    import stat

    if not out.is_dir() or out.is_symlink():
        return
    n = 0
    for dirpath, _, filenames in os.walk(out, followlinks=False):
        for name in sorted(f for f in filenames if f.endswith(".log")):
            path = Path(dirpath) / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes or n >= max_files:
                    continue
                dest.mkdir(exist_ok=True)
                with open(dest / name, "wb") as g:
                    shutil.copyfileobj(f, g)
                n += 1


def tree_bytes(root: Path) -> int:
    """Bytes under `root`, links not followed (a link to a large file costs its own few bytes)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


class Device(StrEnum):
    """Where train.py trains (`[executor] device` of mlipilot.toml); scoring stays on the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


DEVICE_ENV = "MLIPILOT_DEVICE"  # train.py passes it to mace-torch's --device


def resolve_device(device: Device | str) -> Device:
    """`auto`: cuda where this node has a CUDA device torch can use, else cpu (decided in the job, on
    the node that trains). `cuda` without one is a one-line error before training starts."""
    device = Device(device)
    if device == Device.CPU:
        return device
    # no NVIDIA device node: no CUDA, and no need to import torch to know it
    usable = Path("/dev/nvidiactl").exists() and _torch_sees_cuda()
    if device == Device.CUDA and not usable:
        raise JobFailed("device = cuda but this node has no CUDA device torch can use — set [executor] device = "
                        "\"auto\" or \"cpu\" in mlipilot.toml, or ask Slurm for a GPU (gpus_per_node = 1)",
                        kind=FailureKind.SUBMIT_REFUSED)
    return Device.CUDA if usable else Device.CPU


def _torch_sees_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


# what scoring imports (mace-torch, e3nn, scipy, ASE's MD): seconds of start-up, done while training runs
SCORER_MODULES = ("mace", "torch", "mace.calculators", "mlipilot.model_export", "mlipilot.scorecard.evaluate",
                  "mlipilot.scorecard.accuracy", "mlipilot.scorecard.stability_kinds",
                  "mlipilot.scorecard.throughput", "mlipilot.scorecard.spec", "ase.md.langevin", "ase.md.verlet")


# the export step's and the scorer's imports (mace-torch: 5 CPU-s each) run beside training, whose own
# import of mace-torch comes first: three imports at once on 2 cores slowed training's start by seconds
BESIDE_TRAINING_NICE = 19


class _Preload(threading.Thread):
    """Imports `modules` in a background thread of this (harness) process at low priority, beside
    training; failures are left for the real import to report. `finish()` is what the scorer waits on:
    the imports not started yet are left to the scorer's own thread (at normal priority), and the
    thread's priority goes back up where the OS lets it — on a loaded machine a nice-19 thread still
    importing when training ended kept a whole trial waiting for minutes."""

    def __init__(self, modules: tuple[str, ...]):
        super().__init__(name="mlipilot-preload", daemon=True)
        self.modules, self.stop = modules, threading.Event()

    def run(self) -> None:
        with contextlib.suppress(OSError):  # this thread only: training's own imports come first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BESIDE_TRAINING_NICE)
        from mlipilot.registry import load_dotted

        for name in self.modules:
            if self.stop.is_set():
                return
            try:
                load_dotted(name)
            except Exception:
                return

    def finish(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError, TypeError):  # raising priority back needs CAP_SYS_NICE (root)
            os.setpriority(os.PRIO_PROCESS, self.native_id, 0)
        self.join()


def _preload(modules: tuple[str, ...]) -> _Preload:
    """Start importing `modules` beside training (one thread per process, as the scorer runs)."""
    for k, v in ONE_THREAD.items():
        os.environ.setdefault(k, v)
    thread = _Preload(modules)
    thread.start()
    return thread


def _exit_fast_after_result() -> None:
    """In a submitit job process (never the launcher, where the debug executor runs jobs): once
    submitit has written the job's result, leave without tearing down torch and mace-torch — seconds
    the launcher would wait for, as a local job is done when its process ends."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    import atexit

    def leave() -> None:
        try:
            done = submitit.JobEnvironment().paths.result_pickle.exists()
        except Exception:
            return
        if done:  # else submitit failed to write it: the normal exit (and its status) tells
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    atexit.register(leave)


def _prebuild_beside(trainer, preload: _Preload, model_dir: str, caps: dict | None) -> None:
    """Once the imports are done, and while training still runs, build `model_dir`'s architecture
    (model_export.prebuild). In this thread, the one that later forks the MD runs: a build in the import
    thread left MKL's allocator state behind that a forked child spun on forever (seen in CI)."""
    while preload.is_alive() and trainer.proc.poll() is None:
        preload.join(0.2)
    if trainer.proc.poll() is not None or preload.is_alive():
        return  # training ended first: nothing to gain
    with contextlib.suppress(Exception):  # the scorer builds it afresh and reports any problem
        import torch

        from mlipilot.model_export import prebuild

        torch.set_num_threads(1)
        prebuild(Path(model_dir), caps)


@_as_result
def train_job(src: str, trial_dir: str, timeout_s: float, sandbox: dict, seed: int = 1,
              foundation: dict[str, str] | None = None, device: str = "cpu", score: dict | None = None) -> dict:
    """Run the committed tree's train/train.py inside the sandbox, then the harness's export step
    (a sandbox of its own, started beside training so its imports are done when training ends) that
    turns the trained model into data: model.json + weights.pt, copied to the trial's `model/` folder;
    the output folder is measured against its limit and then removed.
    `seed` is the harness's training seed (MLIPILOT_SEED; the shipped train.py passes it to mace-torch).
    `foundation`: {name: file in the store} of the run's foundation models, shown read-only (their
    paths inside the job in MLIPILOT_FOUNDATION_MODELS). `device`: auto | cpu | cuda, resolved here
    (MLIPILOT_DEVICE for train.py; the sandbox shows the GPU's device nodes only to a cuda job).
    `score`: score_job's keyword arguments but `model_dir` — then this job also scores the exported
    model (harness code in this process, never the sandbox's; its imports done while training ran)
    and returns score_job's result under "score"; `score["warm"]`, an earlier trial's model folder,
    has its architecture built while training runs (model_export.prebuild)."""
    import dataclasses
    import shutil

    from mlipilot.cores import TrainingThreads
    from mlipilot.foundation import ENV as FOUNDATION_ENV
    from mlipilot.model_export import CONFIG_FILE, ExportError, take_export
    from mlipilot.sandbox import (
        INPUTS,
        SandboxConfig,
        SandboxError,
        clean_env,
        open_sandbox,
        probe_token,
        start_sandboxed,
    )

    started = time.time()
    used = resolve_device(device)  # before the preload thread: two threads importing torch may deadlock
    _exit_fast_after_result()
    trial = Path(trial_dir)
    src_dir, out, dest = Path(src), trial / "job" / "out", trial / MODEL_DIR
    shutil.rmtree(dest, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    box_cfg = SandboxConfig.from_json(sandbox)
    inside = {name: path if box_cfg.kind == "none" else str(INPUTS / f"{name}.model")
              for name, path in (foundation or {}).items()}
    box_cfg = dataclasses.replace(box_cfg, inputs=tuple((foundation[n], inside[n]) for n in inside))
    limits = box_cfg.limits
    # the export sandbox never sees the GPU: it only reads the model file on the CPU
    box, export_box = open_sandbox(dataclasses.replace(box_cfg, gpu=used == Device.CUDA)), open_sandbox(box_cfg)
    # the launcher's preflight probed this very sandbox on this host as this uid (before any agent code
    # ran): probing again costs 0.2 s of every trial; a job on another node (Slurm) probes for itself
    if sandbox.get("probed_on") != probe_token() and (problem := box.problem()):
        raise SandboxError(f"sandbox {box.kind} cannot start: {problem}")
    log = trial / "train.log"
    log.write_bytes(b"")
    env = clean_env({**ONE_THREAD, "PYTHONUNBUFFERED": "1", "MLIPILOT_SEED": str(int(seed)),
                     FOUNDATION_ENV: json.dumps(inside), DEVICE_ENV: str(used)})
    # training's intra-op threads: the cores this job holds that nothing else uses (mlipilot.cores);
    # the export step and the scorer (MD) stay on one thread per process
    claim = TrainingThreads()
    threads = claim.threads
    train_env = {**env, **claim.env()}
    inner = lambda p: str(box.inside(p, src_dir, out))  # noqa: E731
    model, export_dir = out / "model.model", out / "export"
    train = [sys.executable, "train/train.py", "--out-dir", inner(out / "train"), "--model-out", inner(model)]
    # harness code, but in a sandbox: unpickling the model may run the agent's code. It imports now and
    # exports when told `go`, after train.py's sandbox (a PID namespace of its own) has ended
    export_log = trial / "export.log"
    export_log.write_bytes(b"")
    exporter = start_sandboxed(export_box, [sys.executable, "-P", "-m", "mlipilot.model_export", "--wait",
                                            inner(model), inner(export_dir)], src_dir, out, env, export_log, stdin=True,
                               nice=BESIDE_TRAINING_NICE)
    t_train = time.time()
    trainer = start_sandboxed(box, train, src_dir, out, train_env, log)
    # the scorer's imports, in a thread of this process once both sandboxes are started: an import holds
    # the GIL for long stretches, which delayed starting them by 0.2 s
    score = dict(score) if score else None
    warm = score.pop("warm", None) if score else None
    preload = _preload(SCORER_MODULES) if score else None
    try:
        try:
            if warm:
                _prebuild_beside(trainer, preload, warm, score.get("caps"))
            rc = trainer.wait(max(0.0, timeout_s - (time.time() - t_train)))
            claim.release()
        except subprocess.TimeoutExpired:
            raise JobFailed(f"training timed out after {timeout_s:.0f} s (its limit, train_timeout_min = {timeout_s / 60:g})",
                            kind=FailureKind.TIMEOUT) from None
        if rc != 0:
            raise JobFailed(f"train/train.py exited with status {rc}{_limit_hint(rc, log, limits)}: "
                            f"{last_error_line(log)}", kind=FailureKind.TRAIN_CRASH)
        if not model.is_file() or model.is_symlink():
            raise JobFailed(f"train/train.py finished but wrote no model file at --model-out ({model.name})",
                            kind=FailureKind.SMOKE)
        t_export = time.time()
        exporter.unnice()  # its imports ran at nice 19 beside training; training is over
        exporter.send("go")
        try:
            rc = exporter.wait(limits.export_timeout_min * 60)
        except subprocess.TimeoutExpired:
            raise JobFailed(f"model export timed out (its limit, [sandbox] export_timeout_min = {limits.export_timeout_min:g})",
                            kind=FailureKind.TIMEOUT) from None
        if rc != 0 or not (export_dir / CONFIG_FILE).exists():
            raise JobFailed(f"the trained model cannot be exported as data{_limit_hint(rc, export_log, limits)}: "
                            f"{last_error_line(export_log)}", kind=FailureKind.SMOKE)
        size = tree_bytes(out)
        if size > limits.output_gb * (1 << 30):
            raise JobFailed(f"the job left {size / (1 << 30):.1f} GB in its output folder, more than the sandbox's "
                            f"limit output_gb = {limits.output_gb:g}", kind=FailureKind.SMOKE)
        try:
            take_export(out, dest)
        except ExportError as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise JobFailed(f"the exported model cannot be taken out of the sandbox: {e}", kind=FailureKind.SMOKE) from None
    finally:
        claim.release()
        exporter.kill()  # training failed: the waiting export step ends unused
        keep_logs(out, trial / "logs")  # mace-torch's own logs, as plain text
        shutil.rmtree(out, ignore_errors=True)  # only the copied export (and logs) leave the sandbox's folder
    done = time.time()
    result = {"started": started, "seconds": done - started, "host": socket.gethostname(),
              "model": str(dest), "sandbox": str(box.kind), "device": str(used), "threads": threads,
              "steps": {"train_py": t_export - t_train, "export": done - t_export}}
    if score is not None:
        preload.finish()  # normally long done; an import still running finishes first, the rest come here
        result["score"] = score_job(str(dest), **score)
    return result


def scored_in_job(train_result: dict) -> dict | None:
    """The score a train job made itself (train_job's `score`), as `wait(score job)` returns it: None
    when it did not score, JobFailed when scoring failed."""
    scored = train_result.get("score")
    if scored is None:
        return None
    if isinstance(scored, dict) and scored.get("error"):
        raise JobFailed(scored["error"], scored.get("traceback"), scored.get("kind"))
    return scored


def _harness_job(out_json: str, expected: dict | None, files: dict[str, str]) -> float:
    """Start of a scoring or validation job: one thread, no workspace code on sys.path or in the
    working directory, and the store's files as sealed at init (a mismatch runs nothing)."""
    for k, v in ONE_THREAD.items():
        os.environ[k] = v
    os.chdir(Path(out_json).parent)
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    from mlipilot.integrity import sha256_file

    for name, path in files.items():
        if expected and expected.get(name) and sha256_file(Path(path)) != expected[name]:
            raise JobFailed(f"store seal broken: {Path(path).name} differs from its hash recorded at init",
                            kind=FailureKind.INTEGRITY)
    return time.time()


@_as_result
def score_job(model_dir: str, spec_path: str, holdout_path: str, out_json: str,
              expected: dict | None = None, caps: dict | None = None) -> dict:
    """Score a model with the harness's scorecard (never workspace code); write scorecard.json.
    `expected` holds the sealed sha256 of the scorecard and holdout: a mismatch scores nothing."""
    started = _harness_job(out_json, expected, {"scorecard": spec_path, "holdout": holdout_path})
    from mlipilot.scorecard.evaluate import score_model
    from mlipilot.scorecard.spec import load_spec

    lines: list[str] = []
    result = score_model(Path(model_dir), load_spec(Path(spec_path)), Path(holdout_path),
                         progress=lines.append, caps=caps)  # the launcher prints the lines (once, whatever the executor)
    metrics = result.to_json()  # the flat shape score files and ledgers hold
    Path(out_json).write_text(json.dumps(metrics, indent=1, sort_keys=True))
    return {"started": started, "seconds": time.time() - started, "metrics": metrics, "log": lines}


@_as_result
def validate_job(model_dir: str, spec_path: str, scorecard_path: str, holdout_path: str, out_json: str,
                 extra_path: str | None = None, expected: dict | None = None, progress_path: str | None = None) -> dict:
    """Validate a model against the private validation spec (harness code only, one thread);
    resumable: the checks a killed job finished are read back from the partial file. Each progress line
    is also appended to `progress_path` as it comes, for the launcher to show while the job runs."""
    started = _harness_job(out_json, expected, {"holdout": holdout_path, "validation": spec_path})
    from mlipilot.validation.runner import validate_model

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if progress_path:
            with open(progress_path, "a") as f:
                f.write(line.replace("\n", " ") + "\n")

    summary = validate_model(Path(model_dir), Path(spec_path), Path(scorecard_path), Path(holdout_path),
                             Path(out_json), Path(extra_path) if extra_path else None, progress=say)
    return {"started": started, "seconds": time.time() - started, "summary": summary, "log": lines}


# squeue reasons for a pending job that Slurm will never start as submitted
HOPELESS_PENDING = ("PartitionConfig", "BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit",
                    "InvalidAccount", "InvalidQOS", "QOSMaxWallDurationPerJobLimit")


def _hopeless_reason(job: submitit.Job) -> str | None:
    if not isinstance(job, submitit.SlurmJob):
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", str(job.job_id), "-o", "%T %r"], capture_output=True,
                             text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out[1] if len(out) == 2 and out[0] == "PENDING" and out[1] in HOPELESS_PENDING else None


def _finished_result(job: submitit.Job) -> tuple[bool, object]:
    """(True, result) once a local job's task has written a successful result (submitit writes it
    elsewhere and renames it: it is whole once it exists), else (False, None). The task and its
    controller still take about 0.15 s to exit after that; the launcher need not wait for them."""
    path = job.paths.result_pickle
    if not isinstance(job, submitit.LocalJob) or not path.exists():
        return False, None
    try:
        outcome, result = submitit.core.utils.pickle_load(path)
    except Exception:  # unreadable: the job's own end and job.result() report it
        return False, None
    return outcome == "success", result


_winding_down: list[subprocess.Popen] = []


def _reap_at_exit(job: submitit.Job) -> None:
    """A controller whose result was taken ends by itself moments later; the launcher waits for it
    before it exits, so it leaves nothing running (nor a zombie) behind."""
    proc = getattr(job, "_process", None)
    if proc is None or proc.poll() is not None:
        return
    if not _winding_down:
        import atexit

        atexit.register(_reap)
    _winding_down.append(proc)


def _reap(timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _winding_down:
        with contextlib.suppress(subprocess.TimeoutExpired):
            _winding_down[0].wait(max(0.01, deadline - time.monotonic()))
        _winding_down.pop(0)


def wait(job: submitit.Job, poll_s: float = 1.0, on_poll: Callable[[], None] | None = None) -> object:
    """Block until the job ends; return its result or raise JobFailed with the reason."""
    if isinstance(job, submitit.LocalJob):
        poll_s = min(poll_s, 0.02)  # a file and a process poll, not sacct (a few µs): the end is seen within 20 ms
    finished, result = False, None
    if not isinstance(job, submitit.DebugJob):
        polls, shown = 0, 0.0
        while not job.done():
            finished, result = _finished_result(job)
            if finished:
                break
            if on_poll and time.monotonic() - shown >= 0.25:  # the caller's poll reads a log: not 50 times a second
                on_poll()
                shown = time.monotonic()
            polls += 1
            if polls % 10 == 1 and (reason := _hopeless_reason(job)):
                job.cancel(check=False)
                raise JobFailed(f"Slurm will never start job {job.job_id} as requested (pending: {reason}); "
                                "check partition, cpus_per_task, mem_gb and gpus_per_node in mlipilot.toml",
                                kind=FailureKind.SUBMIT_REFUSED)
            time.sleep(poll_s)
        if on_poll:
            on_poll()
    if finished:
        _reap_at_exit(job)
        return _checked(result)
    try:
        result = job.result()
    except submitit.core.utils.FailedJobError as e:
        raise JobFailed(_last_error_line(str(e))) from None
    except submitit.core.utils.UncompletedJobError as e:
        timed_out = re.search(r"time ?out|time limit", str(e), re.I)  # e.g. Slurm's TIMEOUT state
        gone = re.search(r"interrupted", str(e))  # a re-attached job that ended with its launcher
        raise JobFailed(f"job did not complete: {_last_error_line(str(e))}",
                        kind=FailureKind.TIMEOUT if timed_out else FailureKind.INTERRUPTED if gone else None) from None
    return _checked(result)


def _checked(result: object) -> object:
    if isinstance(result, dict) and result.get("error"):
        raise JobFailed(result["error"], result.get("traceback"), result.get("kind"))
    return result


def last_error_line(log: Path, limit: int = 300) -> str:
    """The line of a job's log that says why it failed (a Python exception's last line, mace's own
    message), for the verdict's reason; the agent sees the sanitised log tail anyway."""
    from mlipilot.sanitize import sanitize

    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()] if log.exists() else []
    says_why = lambda x: re.search(r"(Error|Exception|error:|Traceback)", x) and not x.startswith("File ")  # noqa: E731
    for i in range(len(lines) - 1, -1, -1):
        if not says_why(lines[i]):
            continue
        if "CalledProcessError" in lines[i]:  # train.py failed because its child (mace-torch) did: the child's
            # own message, above the wrapper's traceback, is the reason an agent can act on
            top = max((j for j in range(i) if lines[j].startswith("Traceback")), default=i)
            child = next((lines[j] for j in range(top - 1, -1, -1) if says_why(lines[j])
                          and not lines[j].startswith("Traceback")), None)
            if child:
                return sanitize(child, limit)
        return sanitize(lines[i], limit)
    return sanitize(lines[-1], limit) if lines else "no output"


def _last_error_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if "JobFailed" in line or "Error" in line:
            return line.strip()[-500:]
    return text.strip().splitlines()[-1][-500:] if text.strip() else "unknown error"
