"""The training sandbox: what the agent's `train.py` may see and touch.

Inside (bwrap), the job sees only what it needs, read-only: the system's `/usr` (and its `/bin`,
`/lib` links), a few files of `/etc`, the Python environment and MLIPilot's package — no home, no
run directory, no store of this or any other run, no data cache. The trained tree is mounted
read-only at JOB/src, the output folder (the only writable place) at JOB/out, `/tmp` is a small
private tmpfs. The job runs as an unprivileged uid in its own user namespace with no capabilities
(also when the launcher is root, where bwrap would otherwise keep root's), cannot make further user
namespaces, has no network, its own PID namespace and session (nothing outlives it), an environment
without API keys, and limits on processes, memory, file size and `/tmp` (see `Limits`).

One class per kind (`bwrap`, `apptainer`, `none`) behind the `Sandbox` protocol, one line each in
SANDBOXES; `mlipilot init` probes which one works here and writes it to mlipilot.toml.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from mlipilot.registry import Registry

JOB = Path("/tmp/mlipilot-job")
INPUTS = JOB / "inputs"  # where declared read-only inputs (foundation models) appear inside the job
# a user's secrets, relative to $HOME: hidden inside the sandbox
SECRETS = (".ssh", ".netrc", ".aws", ".azure", ".config/gcloud", ".kube", ".docker", ".git-credentials",
           ".config/gh", ".pypirc", ".npmrc", ".gnupg", ".cache/huggingface/token")
_SECRET_ENV = re.compile(r"(?i)(key|token|secret|passw|credential|auth)")


class SandboxKind(StrEnum):
    BWRAP = "bwrap"
    APPTAINER = "apptainer"
    NONE = "none"


class SandboxError(RuntimeError):
    """The configured sandbox cannot start; the message names the cause and the fix."""


@dataclass(frozen=True)
class Limits:
    """What one sandboxed job (training, export) may use; `[sandbox]` keys of mlipilot.toml."""

    processes: int = 512  # tasks (threads count) of the job; root launchers need a writable pids cgroup
    memory_gb: float = 16.0  # RAM the job may hold: each process's heap (RLIMIT_DATA) plus /tmp and /dev/shm
    file_gb: float = 2.0  # the largest file the job may write
    output_gb: float = 4.0  # the output folder, measured after the job
    tmp_mb: int = 512  # the private /tmp (RAM-backed; counted in memory_gb)
    shm_mb: int = 256  # the private /dev/shm (RAM-backed; counted in memory_gb); the rest of /dev is read-only
    export_timeout_min: float = 5.0  # the harness's export step, after train.py

    @property
    def ram_disks_gb(self) -> float:
        return (self.tmp_mb + self.shm_mb) / 1024

    def to_json(self) -> dict:
        return asdict(self)


LIMIT_FIELDS = {f.name: (int, float) for f in fields(Limits)}


@dataclass(frozen=True)
class SandboxConfig:
    """`[sandbox]` of mlipilot.toml, plus the paths `init` recorded as private to the harness."""

    kind: SandboxKind = SandboxKind.BWRAP
    image: str | None = None  # apptainer only: the .sif (or sandbox folder) holding the Python environment
    hide: tuple[str, ...] = field(default_factory=tuple)
    limits: Limits = Limits()
    inputs: tuple[tuple[str, str], ...] = ()  # declared read-only inputs: (host path, path inside the job)
    gpu: bool = False  # a cuda training job: the GPU's device nodes are shown (never to export or scoring)

    def to_json(self) -> dict:
        return {"kind": str(self.kind), "image": self.image, "hide": list(self.hide),
                "limits": self.limits.to_json(), "inputs": list(self.inputs), "gpu": self.gpu}

    @classmethod
    def from_json(cls, d: dict) -> "SandboxConfig":
        return cls(SandboxKind(d.get("kind", "bwrap")), d.get("image"), tuple(d.get("hide", ())),
                   Limits(**d.get("limits", {})), tuple(tuple(x) for x in d.get("inputs", ())),
                   bool(d.get("gpu", False)))


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The job's environment: the launcher's, less anything that looks like a credential."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_ENV.search(k)}
    env.update(extra or {})
    return env


# what bwrap binds read-only besides the Python environment: the system's programs and libraries
# (where they are links, as on merged-/usr systems, the link) and the /etc files the loader, Python
# and mace-torch read — never all of /etc (/etc/shadow is readable to a job whose host uid is root)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "passwd", "group", "nsswitch.conf", "fonts",
       "localtime", "os-release", "mime.types")
SANDBOX_UID = 1000  # the job's uid inside its user namespace (any but 0: bwrap then drops every capability)


def _under(p: Path, roots) -> bool:
    return any(q == p or q in p.parents for q in roots)


def runtime_paths() -> list[Path]:
    """What the job needs to run Python, mace-torch and the export step, outside the system folders:
    the interpreter's prefixes, site-packages, MLIPilot's package, and the user's PYTHONPATH and
    LD_LIBRARY_PATH entries (module systems put libraries there). Outermost only."""
    import site
    import sys

    import mlipilot

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent,
             Path(mlipilot.__file__).resolve().parent, *(Path(p) for p in site.getsitepackages())}
    for var in ("PYTHONPATH", "LD_LIBRARY_PATH"):
        paths |= {Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p and Path(p).is_absolute()}
    paths = {p.resolve() for p in paths if p.exists()}
    system = [Path(s) for s in SYSTEM]
    return sorted(p for p in paths if not _under(p, system) and not any(q in p.parents for q in paths)
                  and p != Path("/"))


def runtime_links() -> list[tuple[str, Path]]:
    """(target, link) for each symbolic link on the way to the runtime paths as the launcher names them
    (`venv -> /real/venv`, shared homes, conda): the job sees the links too, so the interpreter's own
    path (sys.executable, which keeps the link) starts inside the sandbox as outside."""
    import site
    import sys

    named = {Path(sys.executable).parent, Path(sys.prefix), Path(sys.base_prefix),
             *(Path(p) for p in site.getsitepackages())}
    for var in ("PYTHONPATH", "LD_LIBRARY_PATH"):
        named |= {Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p and Path(p).is_absolute()}
    bound = [Path(s) for s in SYSTEM] + runtime_paths()
    links: dict[Path, str] = {}
    for p in named:
        for q in [*reversed(p.parents), p]:
            if q.is_symlink() and not _under(q.parent.resolve(), bound) and q not in links:
                links[q] = os.readlink(q)
    return sorted(((t, q) for q, t in links.items()), key=lambda x: len(x[1].parts))


def hidden_paths(cfg: SandboxConfig) -> list[Path]:
    """Paths to hide that a bound runtime path would expose (a store or benchmark folder inside a
    Python environment or beside MLIPilot's package), resolved, outermost only."""
    home = Path.home()
    paths = {Path(p).resolve() for p in [*cfg.hide, *(home / s for s in SECRETS)] if Path(p).exists()}
    exposed = runtime_paths()
    return sorted(p for p in paths if _under(p, exposed) and not any(q in p.parents for q in paths))


def gpu_devices() -> list[str]:
    """The NVIDIA device nodes of this node (/dev/nvidia0, nvidiactl, nvidia-uvm, nvidia-caps/...):
    bwrap's own minimal /dev has none of them, so a cuda job gets them bound, and only a cuda job."""
    import glob

    return sorted(p for p in glob.glob("/dev/nvidia*") if not os.path.isdir(p)) + \
        sorted(glob.glob("/dev/nvidia-caps/*"))


def _bwrap_flags(cfg: SandboxConfig, mounts: tuple[str, ...] = ()) -> list[str]:
    """The filesystem (with `mounts`, e.g. the job's src and out), namespaces and identity of a bwrap
    job; the root is read-only, so a write anywhere but the output folder and /tmp fails loudly."""
    # first the RAM-backed places, so that a runtime path or a link under /tmp (a venv there) shows on top.
    # bwrap's /dev is an uncapped tmpfs: /dev/shm gets a capped one of its own and the rest is read-only
    # (device nodes stay writable on a read-only mount)
    cmd = ["bwrap", "--dev", "/dev", *(a for d in (gpu_devices() if cfg.gpu else ()) for a in ("--dev-bind", d, d)),
           "--size", str(int(cfg.limits.shm_mb) << 20), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
           "--proc", "/proc", "--size", str(int(cfg.limits.tmp_mb) << 20), "--tmpfs", "/tmp"]
    for s in SYSTEM:
        p = Path(s)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), s]
        elif p.is_dir():
            cmd += ["--ro-bind", s, s]
    for name in ETC:
        if (Path("/etc") / name).exists():
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for p in runtime_paths():
        cmd += ["--ro-bind", str(p), str(p)]
    for target, link in runtime_links():
        cmd += ["--symlink", target, str(link)]
    for p in hidden_paths(cfg):
        # an empty read-only folder: a write fails loudly instead of vanishing into a tmpfs
        cmd += ["--tmpfs", str(p), "--remount-ro", str(p)] if p.is_dir() else ["--ro-bind", "/dev/null", str(p)]
    cmd += [*mounts, *(a for host, inner in cfg.inputs for a in ("--ro-bind", host, inner)), "--remount-ro", "/",
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--disable-userns",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv"]
    return cmd


def probe_token() -> str:
    """Where, as whom and with which bwrap a sandbox probe runs: a job whose launcher's probe passed with
    the same token (same host and uid, moments earlier, before any agent code) need not probe again."""
    return f"{socket.gethostname()}:{os.getuid()}:{shutil.which('bwrap')}"


class Sandbox(Protocol):
    kind: SandboxKind

    def problem(self) -> str | None:
        """None when this sandbox can start here, else one line with the cause and the fix."""

    def command(self, argv: list[str], src: Path, out: Path, env: dict[str, str]) -> tuple[list[str], dict | None, Path]:
        """(command, environment for Popen, working directory) running `argv` with `src` at JOB/src
        (read-only, the working directory) and `out` at JOB/out (writable)."""

    def inside(self, path: Path, src: Path, out: Path) -> Path:
        """Where a host path under src or out appears inside the sandbox."""


class _Mounted:
    """Shared by the kinds that mount src and out at JOB/src and JOB/out."""

    def inside(self, path: Path, src: Path, out: Path) -> Path:
        path = Path(path)
        for host, inner in ((src, JOB / "src"), (out, JOB / "out")):
            if path == host or host in path.parents:
                return inner / path.relative_to(host)
        raise ValueError(f"{path} is neither under {src} nor under {out}")


class Bubblewrap(_Mounted):
    kind = SandboxKind.BWRAP

    def __init__(self, cfg: SandboxConfig):
        self.cfg = cfg

    def problem(self) -> str | None:
        """Starts the sandbox once with the job's own flags and reads what the job would hold: a
        sandbox that starts but leaves the job capabilities (or uid 0) is refused, not used."""
        import sys

        if not shutil.which("bwrap"):
            return ("bubblewrap is not installed — `apt-get install bubblewrap` (or your distribution's package), "
                    "or set [sandbox] kind = \"apptainer\" in mlipilot.toml")
        probe = [*_bwrap_flags(self.cfg), "--", sys.executable, "-I", "-S", "-c",
                 "import os; print(os.getuid(), [l.split()[1] for l in open('/proc/self/status') "
                 "if l.startswith('CapEff')][0])"]
        try:
            p = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"bwrap does not start ({e}) — see README 'Threat model'"
        if p.returncode != 0:
            why = (p.stderr.strip().splitlines() or ["no message"])[-1]
            return (f"bwrap cannot create its namespaces here ({why}) — enable unprivileged user namespaces "
                    "(Ubuntu: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for "
                    "bwrap), or set [sandbox] kind = \"apptainer\" (clusters)")
        uid, cap_eff = (p.stdout.split() + ["?", "?"])[:2]
        if uid == "0" or cap_eff != "0" * 16:
            return (f"the job would run as uid {uid} with capabilities {cap_eff} (it could unmount what hides the "
                    "store) — this bwrap ignores --unshare-user/--uid; install bubblewrap >= 0.8, or run MLIPilot "
                    "as an unprivileged user")
        return None

    def command(self, argv, src, out, env):
        cmd = _bwrap_flags(self.cfg, ("--ro-bind", str(src), str(JOB / "src"), "--bind", str(out), str(JOB / "out")))
        cmd += ["--chdir", str(JOB / "src")]
        # HOME and caches point at the private /tmp: the launcher's home is not there
        for k, v in {**env, "TMPDIR": "/tmp", "HOME": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache",
                     "USER": "mlipilot", "LOGNAME": "mlipilot"}.items():
            cmd += ["--setenv", k, v]
        return cmd + ["--", *argv], None, Path("/")


class Apptainer(_Mounted):
    """For clusters without unprivileged user namespaces. `image` must hold the Python environment
    with mace-torch and MLIPilot installed (MLIPilot's export step runs inside it)."""

    kind = SandboxKind.APPTAINER

    def __init__(self, cfg: SandboxConfig):
        self.cfg = cfg

    def problem(self) -> str | None:
        exe = shutil.which("apptainer") or shutil.which("singularity")
        if not exe:
            return "apptainer is not installed here — `module load apptainer`, or set [sandbox] kind = \"bwrap\""
        if os.geteuid() == 0:
            return ("apptainer started by root gives the job root's capabilities — run MLIPilot as an unprivileged "
                    "user, or set [sandbox] kind = \"bwrap\" (it drops them)")
        if not self.cfg.image or not Path(self.cfg.image).exists():
            return (f"[sandbox] image = {self.cfg.image!r} does not exist — point it at a .sif with your Python "
                    "environment (mace-torch and MLIPilot installed)")
        return None

    def command(self, argv, src, out, env):
        exe = shutil.which("apptainer") or shutil.which("singularity")
        cmd = [exe, "exec", "--contain", "--cleanenv", "--no-home", "--net", "--network", "none",
               "-B", f"{src}:{JOB / 'src'}:ro", "-B", f"{out}:{JOB / 'out'}", "--pwd", str(JOB / "src")]
        if self.cfg.gpu:
            cmd.append("--nv")  # the node's NVIDIA devices and driver libraries, for a cuda job only
        for host, inner in self.cfg.inputs:
            cmd += ["-B", f"{host}:{inner}:ro"]
        for k, v in env.items():
            cmd += ["--env", f"{k}={v}"]
        return cmd + [str(self.cfg.image), *argv], None, Path("/")


class NoSandbox:
    """The user's full rights: for machines where no sandbox starts. Said at every trial."""

    kind = SandboxKind.NONE

    def __init__(self, cfg: SandboxConfig):
        self.cfg = cfg

    def problem(self) -> str | None:
        return None

    def command(self, argv, src, out, env):
        return list(argv), env, Path(src)

    def inside(self, path: Path, src: Path, out: Path) -> Path:
        return Path(path)


# no dotted-path fallback: the sandbox is the security boundary, only the shipped kinds may be named
SANDBOXES: Registry[type] = Registry("sandbox", {SandboxKind.BWRAP: Bubblewrap, SandboxKind.APPTAINER: Apptainer,
                                                SandboxKind.NONE: NoSandbox})
NONE_WARNING = ("WARNING: sandbox = none — train/train.py runs with your full rights: it can read the holdout "
                "and change the store. Install bubblewrap and set [sandbox] kind = \"bwrap\" in mlipilot.toml.")


def open_sandbox(cfg: SandboxConfig) -> Sandbox:
    return SANDBOXES.resolve(SandboxKind(cfg.kind))(cfg)


def probe() -> tuple[SandboxKind, str | None]:
    """The sandbox `init` writes: bwrap where it starts, else none with the reason bwrap gave."""
    why = Bubblewrap(SandboxConfig()).problem()
    return (SandboxKind.NONE, why) if why else (SandboxKind.BWRAP, None)


# runs before bwrap, outside the sandbox: sets the job's limits (soft = hard, so the job cannot raise
# them back) and joins the pids cgroup, then becomes bwrap; stdlib only, no site (fast, no user code)
_LIMITED_EXEC = """
import json, os, resource, sys
spec = json.loads(sys.argv[1])
for name, value in spec["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
for procs in spec["cgroups"]:
    with open(procs, "w") as f:
        f.write("0")
os.nice(spec.get("nice", 0))
os.execvp(sys.argv[2], sys.argv[2:])
"""


class _PidsCgroup:
    """A pids cgroup for one job, where the launcher may make one (root, with cgroup v1 or a delegated
    v2 tree): RLIMIT_NPROC counts per host uid and does not bind uid 0 — and a root launcher's job is
    still uid 0 on the host, even inside its user namespace."""

    def __init__(self, limits: Limits):
        import uuid

        self.dir: Path | None = None
        base = _cgroup_dir("pids")
        if base is None:
            return
        d = base / f"mlipilot-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            d.mkdir()
            (d / "pids.max").write_text(str(int(limits.processes)))
            self.dir = d
        except OSError:
            with contextlib.suppress(OSError):
                d.rmdir()

    @property
    def procs(self) -> list[str]:
        return [str(self.dir / "cgroup.procs")] if self.dir else []

    def close(self) -> None:
        import time

        for _ in range(50 if self.dir else 0):  # the job's processes are gone a moment after bwrap exits
            try:
                self.dir.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _cgroup_dir(controller: str) -> Path | None:
    """This process's own cgroup directory for `controller` where it is writable (v1 hierarchy, or
    the unified v2 tree with the controller enabled for children), else None."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = [c.split(":", 2) for c in Path("/proc/self/cgroup").read_text().splitlines()]
    except OSError:
        return None
    for line in mounts:
        fields_, _, tail = line.partition(" - ")
        mount_point, (fstype, *_, options) = Path(fields_.split()[4]), tail.split()
        if fstype == "cgroup" and controller in options.split(","):
            rel = next((c[2] for c in own if len(c) == 3 and controller in c[1].split(",")), None)
            enabled = True
        elif fstype == "cgroup2":
            rel = next((c[2] for c in own if len(c) == 3 and c[0] == "0"), None)
            d = mount_point / (rel or "").lstrip("/")
            try:
                enabled = controller in (d / "cgroup.subtree_control").read_text().split()
            except OSError:
                enabled = False
        else:
            continue
        if rel is not None and enabled and os.access(mount_point / rel.lstrip("/"), os.W_OK):
            return mount_point / rel.lstrip("/")
    return None


def process_limit_enforced(limits: Limits) -> bool:
    """Whether the process limit binds here: RLIMIT_NPROC for a non-root launcher, a pids cgroup for root."""
    return os.geteuid() != 0 or _cgroup_dir("pids") is not None


def _limited(cmd: list[str], limits: Limits, cgroup: _PidsCgroup | None, nice: int = 0) -> list[str]:
    import json
    import sys

    # /tmp and /dev/shm are RAM too: what they may hold comes out of memory_gb
    heap_gb = max(limits.memory_gb - limits.ram_disks_gb, 0.25)
    rlimits = {"RLIMIT_FSIZE": int(limits.file_gb * (1 << 30)), "RLIMIT_DATA": int(heap_gb * (1 << 30)),
               "RLIMIT_CORE": 0}
    if os.geteuid() != 0:  # counted per host uid: the launcher's own processes count too
        rlimits["RLIMIT_NPROC"] = _own_processes() + int(limits.processes)
    spec = {"rlimits": rlimits, "cgroups": cgroup.procs if cgroup else [], "nice": int(nice)}
    return [sys.executable, "-I", "-S", "-c", _LIMITED_EXEC, json.dumps(spec), *cmd]


def _own_processes() -> int:
    """Tasks (threads included, as RLIMIT_NPROC counts them) of this uid on this host."""
    uid, n = os.getuid(), 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid == uid:
                    n += len(os.listdir(d / "task"))
            except OSError:
                pass
    return n


class SandboxedProcess:
    """A job started in the sandbox (see `start_sandboxed`); `wait` applies a time limit and kills
    the whole sandbox when it runs out."""

    def __init__(self, proc: subprocess.Popen, cgroup: "_PidsCgroup | None"):
        self.proc, self.cgroup = proc, cgroup

    def unnice(self) -> None:
        """Back to normal priority (a job started `nice` beside training, once training is over), where
        the OS lets this process raise it (root); elsewhere it keeps its niceness."""
        import subprocess as sp

        pids = [self.proc.pid]
        with contextlib.suppress(OSError, sp.SubprocessError):
            pids += [int(x) for x in sp.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True,
                                            text=True, timeout=5).stdout.split()]
        for pid in pids:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, 0)

    def send(self, line: str) -> None:
        """Write one line to the job's stdin and close it (a job started with `stdin=True`)."""
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the job is gone; wait() reports its status

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except BaseException:
            self.kill()
            raise
        finally:
            if self.proc.poll() is not None:
                self._close()

    def kill(self) -> None:
        """End the job and its sandbox now (nothing when it has already ended)."""
        if self.proc.poll() is None:
            _kill_group(self.proc)
        self._close()

    def _close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.cgroup:
            self.cgroup.close()
            self.cgroup = None


def start_sandboxed(sandbox: Sandbox, argv: list[str], src: Path, out: Path, env: dict[str, str], log: Path,
                    stdin: bool = False, nice: int = 0) -> SandboxedProcess:
    """Start argv in the sandbox with stdout+stderr appended to `log` (written by the harness, outside),
    under the sandbox's limits; `stdin=True` gives it a pipe the harness writes with `send` (the export
    step waits on it: it imports mace-torch while training runs, in a sandbox of its own). `nice` lowers
    its CPU priority (work beside training that must not slow it)."""
    cmd, popen_env, cwd = sandbox.command(argv, src, out, env)
    limits = getattr(sandbox, "cfg", SandboxConfig()).limits
    cgroup = _PidsCgroup(limits) if sandbox.kind != SandboxKind.NONE and os.geteuid() == 0 else None
    if sandbox.kind != SandboxKind.NONE:
        cmd = _limited(cmd, limits, cgroup, nice)
    elif nice:
        cmd = ["nice", "-n", str(int(nice)), *cmd]
    try:
        with open(log, "ab") as f:
            proc = subprocess.Popen(cmd, cwd=cwd,
                                    env=popen_env if popen_env is not None else {"PATH": os.environ.get("PATH", "")},
                                    stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                    start_new_session=True)
    except BaseException:
        if cgroup:
            cgroup.close()
        raise
    return SandboxedProcess(proc, cgroup)


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap's PID namespace dies with it; `none` loses its session
    except ProcessLookupError:
        pass
    proc.wait()
