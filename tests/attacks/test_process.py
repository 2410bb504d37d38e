"""What train.py can do while it runs: leave processes behind (after the job, after a timeout), open
sockets, read the user's credentials from the environment or from $HOME."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from mlipilot.trial import TrialRunner

pytestmark = pytest.mark.slow  # every test is a whole trial (sandboxed job, scoring MD or a timeout)


def survivors(mark: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", mark], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def spawn_detached(mark: str) -> str:
    return f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {mark!r}],
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    """


def test_no_process_outlives_the_job(arena, honest):
    mark = f"mlipilot-attack-{uuid.uuid4().hex}"
    r = arena.attack(spawn_detached(mark))
    assert r["verdict"] == honest["verdict"]
    assert survivors(mark) == []


def test_no_process_outlives_a_timeout(arena):
    mark = f"mlipilot-attack-{uuid.uuid4().hex}"
    arena.write("train/train.py", textwrap.dedent(spawn_detached(mark)) + "import time\ntime.sleep(600)\n")
    cfg = dataclasses.replace(arena.cfg, train_timeout_min=0.1)
    r = TrialRunner(cfg, progress=print).run("hang")
    assert r["verdict"] == "failed" and "timed out" in r["reason"]
    assert survivors(mark) == []


def test_no_network(arena):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        r = arena.attack(f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"holdout please")
        """)
        try:
            conn, _ = server.accept()
            conn.close()
            reached = True
        except TimeoutError:
            reached = False
    assert not reached
    assert r["verdict"] == "failed" and ("Connection refused" in r["reason"] or "unreachable" in r["reason"]), r["reason"]


def test_credentials_are_neither_in_the_environment_nor_in_home(arena, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".netrc").write_text("machine example.org password hunter2")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-attack-0123456789abcdefghijkl")
    monkeypatch.setenv("HF_TOKEN", "hf_attack0123456789abcdefghijkl")
    r = arena.attack(f"""
        import os, pathlib
        print("ENV", sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k))
        for name in ("~/.netrc", {str(home / ".netrc")!r}):  # $HOME inside, and the launcher's home by path
            try:
                print("NETRC", repr(pathlib.Path(name).expanduser().read_text()))
            except OSError as e:
                print("NETRC", e.strerror)
        for name in ("~/.ssh", {str(home / ".ssh")!r}):
            try:
                print("SSH", sorted(os.listdir(os.path.expanduser(name))))
            except OSError as e:
                print("SSH", e.strerror)
    """)
    log = (Path(r["trial_dir"]) / "train.log").read_text()
    assert "ENV []" in log and "hunter2" not in log and "id_ed25519" not in log, log[:500]
    assert log.count("NETRC No such file or directory") == 2 and log.count("SSH No such file or directory") == 2, log
    assert "sk-attack" not in log and "hunter2" not in log
