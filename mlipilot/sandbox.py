"""The training sandbox: what the agent's `train.py` may see and touch.

Inside, the filesystem is read-only (Python environment, the run's `.git`, everything), `/tmp` and
`/run` are private and empty, the private store, the data cache, the benchmark's source folder and
the user's secrets are hidden, there is no network, the job has its own PID namespace and session
(nothing outlives it), and the environment carries no API keys. Only the trial's output folder is
writable. The trained tree is mounted read-only at JOB/src, the output folder at JOB/out.

One class per kind (`bwrap`, `apptainer`, `none`) behind the `Sandbox` protocol, one line each in
SANDBOXES; `mlipilot init` probes which one works here and writes it to mlipilot.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

JOB = Path("/tmp/mlipilot-job")
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
class SandboxConfig:
    """`[sandbox]` of mlipilot.toml, plus the paths `init` recorded as private to the harness."""

    kind: SandboxKind = SandboxKind.BWRAP
    image: str | None = None  # apptainer only: the .sif (or sandbox folder) holding the Python environment
    hide: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {"kind": str(self.kind), "image": self.image, "hide": list(self.hide)}

    @classmethod
    def from_json(cls, d: dict) -> "SandboxConfig":
        return cls(SandboxKind(d.get("kind", "bwrap")), d.get("image"), tuple(d.get("hide", ())))


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The job's environment: the launcher's, less anything that looks like a credential."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_ENV.search(k)}
    env.update(extra or {})
    return env


PRIVATE = (Path("/tmp"), Path("/run"))  # empty in every sandbox


def _under(p: Path, roots) -> bool:
    return any(q == p or q in p.parents for q in roots)


def runtime_paths() -> list[Path]:
    """What the job needs to run Python, mace-torch and the export step, where it lies under a private
    folder (a virtual environment or a checkout under /tmp): re-exposed read-only."""
    import site
    import sys

    import mlipilot

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent,
             Path(mlipilot.__file__).resolve().parent, *(Path(p) for p in site.getsitepackages())}
    paths = {p.resolve() for p in paths if p.exists()}
    return sorted(p for p in paths if _under(p, PRIVATE) and not any(q in p.parents for q in paths))


def hidden_paths(cfg: SandboxConfig) -> list[Path]:
    """Existing paths to hide, resolved, outermost only (a mount inside a hidden folder would fail);
    under a private folder only where a runtime path re-exposed them."""
    home = Path.home()
    paths = {Path(p).resolve() for p in [*cfg.hide, *(home / s for s in SECRETS)] if Path(p).exists()}
    exposed = runtime_paths()
    return sorted(p for p in paths if (not _under(p, PRIVATE) or _under(p, exposed))
                  and not any(q in p.parents for q in paths))


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
        if not shutil.which("bwrap"):
            return ("bubblewrap is not installed — `apt-get install bubblewrap` (or your distribution's package), "
                    "or set [sandbox] kind = \"apptainer\" in mlipilot.toml")
        probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "true"]
        try:
            p = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"bwrap does not start ({e}) — see README 'Threat model'"
        if p.returncode != 0:
            why = (p.stderr.strip().splitlines() or ["no message"])[-1]
            return (f"bwrap cannot create its namespaces here ({why}) — enable unprivileged user namespaces "
                    "(Ubuntu: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for "
                    "bwrap), or set [sandbox] kind = \"apptainer\" (clusters)")
        return None

    def command(self, argv, src, out, env):
        cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp", "--tmpfs", "/run"]
        for p in runtime_paths():
            cmd += ["--ro-bind", str(p), str(p)]
        for p in hidden_paths(self.cfg):
            # an empty read-only folder: a write fails loudly instead of vanishing into a tmpfs
            cmd += ["--tmpfs", str(p), "--remount-ro", str(p)] if p.is_dir() else ["--ro-bind", "/dev/null", str(p)]
        cmd += ["--ro-bind", str(src), str(JOB / "src"), "--bind", str(out), str(JOB / "out"),
                "--chdir", str(JOB / "src"),
                "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--die-with-parent", "--new-session", "--clearenv"]
        for k, v in {**env, "TMPDIR": "/tmp"}.items():
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
        if not self.cfg.image or not Path(self.cfg.image).exists():
            return (f"[sandbox] image = {self.cfg.image!r} does not exist — point it at a .sif with your Python "
                    "environment (mace-torch and MLIPilot installed)")
        return None

    def command(self, argv, src, out, env):
        exe = shutil.which("apptainer") or shutil.which("singularity")
        cmd = [exe, "exec", "--contain", "--cleanenv", "--no-home", "--net", "--network", "none",
               "-B", f"{src}:{JOB / 'src'}:ro", "-B", f"{out}:{JOB / 'out'}", "--pwd", str(JOB / "src")]
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


SANDBOXES: dict[SandboxKind, type] = {SandboxKind.BWRAP: Bubblewrap, SandboxKind.APPTAINER: Apptainer,
                                      SandboxKind.NONE: NoSandbox}
NONE_WARNING = ("WARNING: sandbox = none — train/train.py runs with your full rights: it can read the holdout "
                "and change the store. Install bubblewrap and set [sandbox] kind = \"bwrap\" in mlipilot.toml.")


def open_sandbox(cfg: SandboxConfig) -> Sandbox:
    return SANDBOXES[SandboxKind(cfg.kind)](cfg)


def probe() -> tuple[SandboxKind, str | None]:
    """The sandbox `init` writes: bwrap where it starts, else none with the reason bwrap gave."""
    why = Bubblewrap(SandboxConfig()).problem()
    return (SandboxKind.NONE, why) if why else (SandboxKind.BWRAP, None)


def run_sandboxed(sandbox: Sandbox, argv: list[str], src: Path, out: Path, env: dict[str, str], log: Path,
                  timeout_s: float) -> int:
    """Run argv in the sandbox with stdout+stderr appended to `log` (written by the harness, outside).
    Raises subprocess.TimeoutExpired after killing the whole sandbox."""
    cmd, popen_env, cwd = sandbox.command(argv, src, out, env)
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, env=popen_env if popen_env is not None else {"PATH": os.environ.get("PATH", "")},
                                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise
        except BaseException:
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap's PID namespace dies with it; `none` loses its session
    except ProcessLookupError:
        pass
    proc.wait()
