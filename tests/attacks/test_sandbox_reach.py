"""What the training sandbox lets a job reach, attacked from inside it as the launcher's user and as an
unprivileged one (issue 33): the benchmark's reference implementation (ASE's EMT, PySCF) is not
importable or readable, /dev/shm is capped and the rest of /dev read-only, and an interpreter reached
through a symbolic link (`venv -> /real/venv`) still starts the sandbox instead of degrading it."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from mlipilot_testkit import ROOT, as_launcher, launchers

# run by the launcher under test: builds the trial's sandbox (the reference hidden as TrialRunner hides
# it) and runs ATTACK inside it; prints what the attack reached
HARNESS = textwrap.dedent("""
    import json, subprocess, sys
    from mlipilot.sandbox import SandboxConfig, _bwrap_flags, Bubblewrap
    from mlipilot.scorecard.reference import ALWAYS_HIDDEN, reference_sources
    cfg = SandboxConfig(hide=tuple(reference_sources([*ALWAYS_HIDDEN, "emt"])))
    problem = Bubblewrap(cfg).problem()
    if problem:
        print(json.dumps({"problem": problem})); sys.exit(0)
    p = subprocess.run([*_bwrap_flags(cfg), "--", sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
    print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else json.dumps({"rc": p.returncode, "err": p.stderr[-500:]}))
""")

ATTACK = textwrap.dedent("""
    import json, os, glob, importlib.util, importlib.machinery
    got = {}
    try:
        from ase.calculators.emt import EMT
        from ase.build import bulk
        a = bulk("Cu", cubic=True); a.calc = EMT(); got["emt_energy"] = a.get_potential_energy()
    except Exception as e:
        got["emt_energy"] = type(e).__name__
    import ase.calculators
    src = os.path.join(os.path.dirname(ase.calculators.__file__), "emt.py")
    try:
        got["emt_source_bytes"] = len(open(src, "rb").read())
    except OSError:
        got["emt_source_bytes"] = 0
    pyc = glob.glob(os.path.join(os.path.dirname(src), "__pycache__", "emt.*.pyc"))
    try:
        loader = importlib.machinery.SourcelessFileLoader("emt_copy", pyc[0])
        mod = loader.load_module()
        got["emt_from_pyc"] = hasattr(mod, "EMT")
    except Exception as e:
        got["emt_from_pyc"] = type(e).__name__
    try:
        import pyscf
        got["pyscf"] = hasattr(pyscf, "gto")
    except Exception as e:
        got["pyscf"] = type(e).__name__
    def fill(path, mb):
        n = 0
        try:
            with open(path, "wb") as f:
                for _ in range(mb):
                    f.write(b"x" * (1 << 20)); f.flush(); n += 1
        except OSError:
            pass
        return n
    got["shm_mb_written"] = fill("/dev/shm/big", 1024)
    try:
        open("/dev/hidden-store", "wb").write(b"x"); got["dev_writable"] = True
    except OSError:
        got["dev_writable"] = False
    open("/dev/null", "wb").write(b"x")
    got["uid"] = os.getuid()
    got["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    print(json.dumps(got))
""")


def _reach(launcher: str, python: str = sys.executable) -> dict:
    p = as_launcher(launcher, [python, "-c", HARNESS, ATTACK], cwd="/", timeout=120,
                    env={"PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("launcher", launchers())
def test_the_reference_and_ram_disks_are_out_of_reach(launcher):
    got = _reach(launcher)
    assert "problem" not in got, got
    # ASE's EMT (the Cu benchmarks' reference) and PySCF (qm7's) cannot label anything in the job
    assert got["emt_energy"] in ("ImportError", "ModuleNotFoundError") and got["emt_source_bytes"] == 0, got
    assert got["emt_from_pyc"] != True and got["pyscf"] != True, got  # noqa: E712
    # /dev/shm: capped at shm_mb (256 MiB) instead of half the host's RAM; the rest of /dev read-only
    assert got["shm_mb_written"] <= 256 and not got["dev_writable"], got
    assert got["uid"] != 0 and got["cap_eff"] == "0" * 16, got


@pytest.mark.parametrize("launcher", launchers())
def test_an_interpreter_behind_a_symlink_keeps_the_sandbox(launcher, tmp_path):
    """`venv -> /real/venv`: only the real path used to be bound, so bwrap could not exec the linked
    interpreter and init fell back to no sandbox."""
    from mlipilot_testkit import give_to_unprivileged

    link = tmp_path / "venv"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    give_to_unprivileged(tmp_path)
    python = str(link / "bin" / Path(sys.executable).name)
    got = _reach(launcher, python)
    assert "problem" not in got, got["problem"]
    assert got["emt_energy"] in ("ImportError", "ModuleNotFoundError") and got["uid"] != 0, got


def test_init_refuses_a_broken_sandbox_instead_of_running_unsealed(tmp_path, fast_benchmark, monkeypatch):
    """bwrap installed but failing: init stops with the cause and the explicit way out (--sandbox none)."""
    import mlipilot.rundir as rundir
    from mlipilot.errors import MLIPilotError
    from mlipilot.sandbox import SandboxKind

    monkeypatch.setattr(rundir, "probe_sandbox", lambda: (SandboxKind.NONE, "bwrap: execvp /x/venv/bin/python: "
                                                                            "No such file or directory"))
    with pytest.raises(MLIPilotError, match="--sandbox none") as e:
        rundir.init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    assert "execvp" in str(e.value) and not (tmp_path / "run").exists()
    root = rundir.init_run(str(fast_benchmark), tmp_path / "run2", executor="debug", progress=lambda s: None,
                           sandbox="none")  # the explicit way to run without one
    assert 'kind = "none"' in (root / "mlipilot.toml").read_text()
