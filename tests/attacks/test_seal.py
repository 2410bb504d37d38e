"""Routes of issue 20 that a train.py takes while it runs: privileges (CI and many containers run the
launcher as root), a sibling run's store, a planted link in the output, resource exhaustion, a model
description too large to build. Each goes through a real trial; the store and the verdict must be
what an honest run gives, or the trial fails with its reason."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap

import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.rundir import init_run
from mlipilot.sandbox import Limits, process_limit_enforced
from mlipilot.trial import TrialRunner

pytestmark = pytest.mark.slow  # whole trials


def report(record: dict) -> dict:
    """What the attack printed as `ATTACK {...}` in the training log (the harness keeps the log)."""
    log = (os.path.join(record["trial_dir"], "train.log"))
    for line in open(log, errors="replace").read().splitlines():
        if line.startswith("ATTACK "):
            return json.loads(line[len("ATTACK "):])
    raise AssertionError(f"the attack printed nothing: {open(log).read()[-2000:]}")


PRIVILEGE = """
    import json, os, subprocess
    def run(*cmd):
        try:
            p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=20)
            return p.returncode
        except Exception as e:
            return repr(e)
    status = open("/proc/self/status").read()
    out = {"uid": os.getuid(), "cap_eff": [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0],
           "umount_proc": run("umount", "-l", "/proc"), "remount_rw": run("mount", "-o", "remount,rw", "/"),
           "remount_usr": run("mount", "-o", "remount,rw", "/usr"), "userns": run("unshare", "-Ur", "true"),
           "nsenter": run("nsenter", "-n", "-t", "1", "true"), "pids": sorted(os.listdir("/proc"))}
    out["pids"] = [p for p in out["pids"] if p.isdigit()]
    for name, path in (("shadow", "/etc/shadow"), ("ledger", STORE + "/ledger.jsonl"), ("holdout", STORE + "/holdout.xyz"),
                       ("sibling", SIBLING + "/holdout.xyz")):
        try:
            open(path).read(1)
            out[name] = "read"
        except OSError as e:
            out[name] = type(e).__name__
    try:  # the forgery of issue 20: a ledger row with a valid chain
        open(STORE + "/ledger.jsonl", "a").write('{"trial": 99, "verdict": "accepted"}\\n')
        out["forge"] = "written"
    except OSError as e:
        out["forge"] = type(e).__name__
    print("ATTACK " + json.dumps(out), flush=True)
"""


def test_no_privilege_no_other_store(arena, honest, tmp_path, fast_benchmark):
    """As root (CI) or not: uid != 0 and no capabilities in the job; mount, umount, a new user namespace
    and the host's network namespace all refused; the store, a sibling run's store and /etc/shadow
    not there; the ledger not writable."""
    sibling = init_run(str(fast_benchmark), tmp_path / "sibling", executor="debug", progress=lambda s: None)
    sibling_store = sibling.with_name(sibling.name + ".mlipilot-store")
    body = f"STORE = {str(arena.store)!r}\nSIBLING = {str(sibling_store)!r}\n" + textwrap.dedent(PRIVILEGE)
    r = arena.attack(body)
    got = report(r)
    print(got)
    assert got["uid"] != 0 and got["cap_eff"] == "0" * 16
    for key in ("umount_proc", "remount_rw", "remount_usr", "userns", "nsenter"):
        assert got[key] != 0, f"{key} succeeded inside the sandbox"
    for key in ("shadow", "ledger", "holdout", "sibling", "forge"):
        assert got[key] in ("FileNotFoundError", "PermissionError", "OSError"), f"{key}: {got[key]}"
    assert len(got["pids"]) < 10  # its own PID namespace: only the job's processes
    assert r["verdict"] == honest["verdict"] and r["metrics"]["energy_rmse"] == honest["metrics"]["energy_rmse"]


def test_planted_export_link_is_not_followed(arena, honest):
    """`out/export -> another trial's model`: nothing is read through the link."""
    arena.write("train/train.py", copy_trainer(arena.good_model))
    first = TrialRunner(arena.cfg, progress=print).run("honest first")
    target = os.path.join(first["trial_dir"], "model")
    assert os.path.isdir(target)
    r = arena.attack(f"""
        import os, sys
        out = os.path.dirname(sys.argv[sys.argv.index("--model-out") + 1])
        os.makedirs(out, exist_ok=True)
        os.symlink({os.path.relpath(target, "/tmp/mlipilot-job/out")!r}, os.path.join(out, "export"))
        open(os.path.join(out, "model.model"), "wb").write(b"not a model")
        sys.exit(0)
    """, honest_after=False, hypothesis="hand in trial 1's model through a link")
    assert r["verdict"] == "failed" and r["failure"] == "smoke", r["reason"]
    assert not r.get("metrics")


def test_limits_hold_and_leftovers_are_removed(arena, honest):
    """Processes, file size and /tmp capped; what the job leaves in its output folder is gone after."""
    cfg = dataclasses.replace(arena.cfg, sandbox=dataclasses.replace(
        arena.cfg.sandbox, limits=Limits(processes=64, file_gb=0.05, tmp_mb=16, output_gb=1)))
    arena.cfg = cfg
    body = """
        import json, os, subprocess, sys
        out = os.path.dirname(sys.argv[sys.argv.index("--model-out") + 1])
        os.makedirs(out, exist_ok=True)
        procs = []
        try:
            for _ in range(300):
                procs.append(subprocess.Popen(["sleep", "30"]))
        except OSError:
            pass
        for p in procs:
            p.kill()
        def fill(path, mb):
            n = 0
            try:
                with open(path, "wb") as f:
                    for _ in range(mb):
                        f.write(b"0" * (1 << 20)); f.flush(); n += 1
            except OSError:
                pass
            return n
        print("ATTACK " + json.dumps({"procs": len(procs), "big_file_mb": fill(os.path.join(out, "big"), 200),
                                      "tmp_mb": fill("/tmp/big", 200)}), flush=True)
    """
    r = arena.attack(body)
    got = report(r)
    print(got)
    if process_limit_enforced(cfg.sandbox.limits):
        assert got["procs"] < 64
    assert got["big_file_mb"] <= 52 and got["tmp_mb"] <= 16
    assert r["verdict"] == honest["verdict"]
    assert not os.path.exists(os.path.join(r["trial_dir"], "job", "out"))  # nothing left but the copied export
    assert sorted(os.listdir(os.path.join(r["trial_dir"], "model"))) == ["model.json", "weights.pt"]


def test_output_over_its_limit_fails_the_trial(arena):
    cfg = dataclasses.replace(arena.cfg, sandbox=dataclasses.replace(
        arena.cfg.sandbox, limits=Limits(file_gb=0.03, output_gb=0.05)))
    arena.cfg = cfg
    r = arena.attack("""
        import os, sys
        out = os.path.dirname(sys.argv[sys.argv.index("--model-out") + 1])
        os.makedirs(out, exist_ok=True)
        for i in range(4):
            with open(os.path.join(out, f"blob{i}"), "wb") as f:
                f.write(os.urandom(25 << 20))
    """)
    assert r["verdict"] == "failed" and "output_gb" in r["reason"], r["reason"]
    assert not os.path.exists(os.path.join(r["trial_dir"], "job", "out"))
