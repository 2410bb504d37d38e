"""The private store of one run (`<run>.mlipilot-store`): where its files live, in one place. Jobs,
agents and the sandbox never see it; the harness reads and appends through this object."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mlipilot.foundation import FOUNDATION_DIR, FOUNDATION_INDEX
from mlipilot.integrity import DATA_SEED, SEAL_FILE, VALIDATION_SPEC, load_seal
from mlipilot.ledger import Ledger
from mlipilot.run_lock import LOCK_FILE

LEDGER_FILE = "ledger.jsonl"
HOLDOUT_FILE = "holdout.xyz"
SCORECARD_FILE = "scorecard.yaml"
TRIALS_DIR = "trials"
WORKTREES_DIR = "worktrees"
SCORE_FILE = "scorecard.json"  # in a trial's folder: what its scoring job wrote


@dataclass(frozen=True)
class Store:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @cached_property
    def ledger(self) -> Ledger:
        """One Ledger per Store: read once per command, appended to without re-reading."""
        return Ledger(self.ledger_path)

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def holdout(self) -> Path:
        return self.root / HOLDOUT_FILE

    @property
    def scorecard(self) -> Path:
        return self.root / SCORECARD_FILE

    @property
    def seal_path(self) -> Path:
        return self.root / SEAL_FILE

    def seal(self) -> dict:
        return load_seal(self.root)

    @property
    def validation_spec(self) -> Path:
        return self.root / VALIDATION_SPEC

    @property
    def data_seed(self) -> Path:
        return self.root / DATA_SEED

    @property
    def foundation_dir(self) -> Path:
        return self.root / FOUNDATION_DIR

    @property
    def foundation_index(self) -> Path:
        return self.root / FOUNDATION_INDEX

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def trials_dir(self) -> Path:
        return self.root / TRIALS_DIR

    def trial_dir(self, n: int) -> Path:
        return self.trials_dir / f"{n:04d}"

    def worktree(self, iteration: int) -> Path:
        """A parallel candidate's git worktree."""
        return self.root / WORKTREES_DIR / f"iteration-{iteration}"
