"""Terminal controls in what the agent writes (its hypothesis, its training log, the reason quoted from
it) never reach the console: `mlipilot log`, `status` and `show` print no escape sequence, carriage
return, backspace or C1 control, so a failed trial cannot be made to read as accepted. Commits made by
hand (or before the sanitiser) are cleaned on display too."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import git
import pytest

from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # all but \n and \t
FORGED = "\r    1  accepted     0.0100\x1b[2K\x1b[1A\x08\x08\x7f\x9b1A\x1bc\x1b]0;title\x07\x1b]8;;http://x\x1b\\\u202e"
HYPOTHESIS = f"lower the lr{FORGED}\nsecond line{FORGED}"
TRAIN_PY = f"import sys\nprint('Error: boom' + {FORGED!r})\nprint({FORGED!r} * 3)\nsys.exit(1)\n"


def mlipilot(*args: str, cwd: Path) -> str:
    p = subprocess.run(["mlipilot", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p.stdout + p.stderr


def assert_clean(text: str) -> None:
    bad = CONTROL.search(text)
    assert bad is None, f"control {bad.group()!r} in: {text[max(0, bad.start() - 60):bad.end() + 20]!r}"


@pytest.mark.slow  # one trial that fails at once (debug executor), then the console script seven times
def test_a_failed_trial_cannot_print_as_accepted(tmp_path, fast_benchmark):
    run = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=print)
    (run / "train" / "train.py").write_text(TRAIN_PY)
    record = TrialRunner(load_run_config(run), progress=print).run(HYPOTHESIS)
    assert record["verdict"] == "failed" and "boom" in record["reason"]
    # what the harness wrote: the commit message and the ledger hold no controls
    repo = git.Repo(run)
    message = repo.commit("refs/mlipilot/rejected/1").message
    assert_clean(message.replace("\n", ""))
    assert "MLIPilot-Hypothesis: lower the lr 1 accepted 0.0100 second line" in message
    for row in Ledger(load_run_config(run).store / "ledger.jsonl").rows():
        assert_clean(json.dumps(row, ensure_ascii=False).replace("\\n", ""))
    # a commit made by hand with raw controls in its trailers, as an older harness could have written
    repo.git.execute(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m",
                      f"x{FORGED}\n\nMLIPilot-Trial: 2\nMLIPilot-Verdict: failed{FORGED}\n"
                      f"MLIPilot-Hypothesis: h{FORGED}\nMLIPilot-Reason: r{FORGED}"])
    repo.git.update_ref("refs/mlipilot/rejected/2", "HEAD")
    repo.git.reset("--hard", "-q", "HEAD~1")

    outputs = {args: mlipilot(*args, cwd=run) for args in
               [("log", "--all"), ("status",), ("show", "1"), ("show", "2"),
                ("log", "--all", "--json"), ("status", "--json"), ("show", "1", "--json")]}
    for args, out in outputs.items():
        assert_clean(out)
        if "--json" in args:
            json.loads(out)  # and the values parsed from it are clean too (controls are \\u escapes in JSON)
            assert_clean(json.dumps(json.loads(out), ensure_ascii=False).replace("\\n", ""))
    # the verdict column says what the harness decided; no line of any output begins with a forged one
    status_rows = [x for x in outputs[("status",)].splitlines() if re.match(r"\s*\d+\s", x)]
    assert [x.split()[:2] for x in status_rows] == [["1", "failed"]]
    log_rows = [x for x in outputs[("log", "--all")].splitlines() if re.match(r"\s*\d+\s", x)]
    assert [x.split()[:2] for x in log_rows] == [["1", "failed"], ["2", "failed"]]
    for out in outputs.values():
        assert not re.search(r"^\s*1\s+accepted", out, re.M)
    assert outputs[("show", "1")].startswith("trial 1: failed")
