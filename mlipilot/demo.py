"""`mlipilot demo`: the vertical slice on the Cu benchmark with scripted edits (no LLM):
the shipped baseline, a known fix (loss re-weighting plus a longer schedule), and a worse edit."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import Trial

# (hypothesis, {config key: new value}) applied to train/config.yaml in order
SCRIPT = [
    ("baseline: the shipped mace-torch defaults", {}),
    ("re-weight the loss towards energies (energy_weight 100, forces_weight 10) and train 10 epochs: "
     "the baseline's energy error is a near-constant offset that forces-dominated training never fits",
     {"energy_weight": "100.0", "forces_weight": "10.0", "max_num_epochs": "10"}),
    ("stop after 3 epochs to save training time", {"max_num_epochs": "3"}),
]


def set_config(config: Path, updates: dict[str, str]) -> None:
    text = config.read_text()
    for key, value in updates.items():
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        if n == 0:
            text += f"{key}: {value}\n"
    config.write_text(text)


def run_demo(directory: Path | None = None, benchmark: str = "cu_emt", size: str = "default",
             executor: str = "local", progress=print) -> list[dict]:
    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="mlipilot-demo-")) / "run"
    t0 = time.time()
    init_run(benchmark, directory, executor=executor, size=size, progress=progress)
    cfg = load_run_config(directory)
    trial = Trial(cfg, progress=progress)
    records = []
    for hypothesis, updates in SCRIPT:
        set_config(directory / "train" / "config.yaml", updates)
        records.append(trial.run(hypothesis, agent="scripted-demo"))
    progress(f"demo finished in {time.time() - t0:.0f} s; inspect it with:\n"
             f"  mlipilot status --run {directory}\n"
             f"  git -C {directory} log --format='%h %s%n    %(trailers:key=MLIPilot-Verdict,valueonly)'")
    return records
