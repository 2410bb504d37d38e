"""The attack suite: each test writes what a hostile agent could write into train/ (through the same
file tools, or the files they produce) and runs an ordinary trial, then checks that the verdict, the
holdout score, the store and the run branch are what an honest run gives, and that the attempt is
recorded as a failed or rejected trial whose reason names it."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import git
import pytest
from mlipilot_testkit import copy_trainer

from mlipilot.ledger import Ledger
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner
from mlipilot.workspace_tools import WorkspaceTools


def store_digest(store: Path) -> dict[str, str]:
    """Every file of the store that scoring or the audit trusts."""
    names = ("holdout.xyz", "scorecard.yaml", "protected.json", "seal.json")
    return {n: hashlib.sha256((store / n).read_bytes()).hexdigest() for n in names}


class Arena:
    """A sealed run (the sandbox init probes, which must be bwrap here) and an honest reference."""

    def __init__(self, root: Path, good_model: Path):
        self.cfg = load_run_config(root)
        assert self.cfg.sandbox.kind == "bwrap", "the attack suite needs bubblewrap (apt-get install bubblewrap)"
        self.good_model = good_model
        self.tools = WorkspaceTools(self.cfg)
        self.repo = git.Repo(root)

    @property
    def store(self) -> Path:
        return self.cfg.store

    def write(self, path: str, content: str) -> None:
        """As the agent writes: through its file tool."""
        self.tools.write_file(path, content)

    def attack(self, body: str, honest_after: bool = True, hypothesis: str = "attack") -> dict:
        """A train.py that runs `body` (Python at module level), then (optionally) delivers the honest
        model, through a real trial. Returns the ledger record; checks the store is untouched."""
        before = store_digest(self.store)
        head = self.repo.head.commit.hexsha
        source = copy_trainer(self.good_model) if honest_after else "import argparse, sys\n"
        self.write("train/train.py", textwrap.dedent(body) + "\n" + source)
        record = TrialRunner(self.cfg, progress=print).run(hypothesis)
        assert store_digest(self.store) == before, "the store changed"
        assert Ledger(self.store / "ledger.jsonl").verify() is None
        if record["verdict"] != "accepted":
            assert self.repo.head.commit.hexsha == head, "a refused trial moved the run branch"
        return record


@pytest.fixture
def arena(tmp_path, fast_benchmark, good_model) -> Arena:
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=print)
    return Arena(root, good_model)


@pytest.fixture(scope="session")
def honest(tmp_path_factory, fast_benchmark, good_model) -> dict:
    """The record an honest trial of the good model gets: what every attack is compared with."""
    root = init_run(str(fast_benchmark), tmp_path_factory.mktemp("honest") / "run", executor="debug",
                    progress=lambda s: None)
    (root / "train" / "train.py").write_text(copy_trainer(good_model))
    return TrialRunner(load_run_config(root), progress=print).run("honest")
