"""Defence in depth for the private store, for runs where something else than the sandboxed job could
write it (a run with sandbox = none, a user's slip): a forged ledger row or a changed scorecard, holdout
or seal stops the next trial with one line, and `status`/`log` say so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.errors import MLIPilotError
from mlipilot.integrity import seal_store
from mlipilot.trial import TrialRunner

pytestmark = pytest.mark.slow  # every test scores an honest trial first (job + scoring MD)


def mlipilot(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlipilot.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def scored(arena):
    arena.write("train/train.py", copy_trainer(arena.good_model))
    TrialRunner(arena.cfg).run("honest")
    return arena


def test_forged_ledger_row_is_detected_by_trial_status_and_log(scored):
    ledger = scored.store / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    row = json.loads(lines[-1])
    row["composite"], row["verdict"] = -100.0, "accepted"
    lines[-1] = json.dumps(row, sort_keys=True)
    ledger.write_text("\n".join(lines[:-1] + [json.dumps({**row, "trial": 99})] + [lines[-1]]) + "\n")
    with pytest.raises(MLIPilotError, match="store integrity: .*does not follow"):
        TrialRunner(scored.cfg).run("next")
    for cmd in (["status", "--run", str(scored.cfg.root)], ["log", str(scored.cfg.root)]):
        p = mlipilot(*cmd)
        assert p.returncode == 2 and "does not follow line" in p.stderr, (cmd, p.stderr)


@pytest.mark.parametrize("name", ["scorecard.yaml", "holdout.xyz", "protected.json"])
def test_changed_store_file_stops_the_next_trial(scored, name):
    with open(scored.store / name, "a") as f:
        f.write("\n# changed\n")
    with pytest.raises(MLIPilotError, match=f"store integrity: the private store's {name} changed since init"):
        TrialRunner(scored.cfg).run("next")


def test_a_resealed_store_does_not_match_the_first_commit(scored):
    (scored.store / "scorecard.yaml").write_text((scored.store / "scorecard.yaml").read_text().replace("max: 30.0", "max: 3000.0"))
    seal_store(scored.store, json.loads((scored.store / "seal.json").read_text())["hide"])
    with pytest.raises(MLIPilotError, match="does not match the seal in the run's first commit"):
        TrialRunner(scored.cfg).run("next")
