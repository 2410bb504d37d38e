"""Fine-tuning vs from scratch on the Cu benchmark at the same epoch budget (issue 24).

Two trials on the default Cu data (public data seed 0): the shipped configuration trained from scratch,
then the same configuration fine-tuned from the tiny multi-element EMT foundation model MLIPilot ships
(`foundation_model: tiny`, `E0s: estimated`; mace-torch takes the foundation's architecture). Prints
E, F, MD failures and wall times of each, read back from the ledger:

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/fine_tuning.py [--epochs 6] [--size default]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from mlipilot.resources import project_root
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner

TINY = project_root() / "benchmarks" / "foundation" / "tiny_emt_fcc.model"


def set_options(root: Path, **updates) -> None:
    path = root / "train" / "config.yaml"
    text = path.read_text()
    for key, value in updates.items():
        if re.search(rf"(?m)^{key}:", text):
            text = re.sub(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        else:
            text += f"{key}: {value}\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--size", default="default")
    p.add_argument("--executor", default="local")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = init_run("cu_emt", Path(tmp) / "ft", executor=a.executor, size=a.size, data_seed=0,
                        foundation=[f"tiny={TINY}"], progress=lambda s: None)
        runner = TrialRunner(load_run_config(root), progress=lambda s: None)
        set_options(root, max_num_epochs=a.epochs)
        rows = [runner.run(f"from scratch, {a.epochs} epochs")]
        set_options(root, foundation_model="tiny", E0s="estimated")
        rows.append(runner.run(f"fine-tuned from tiny, {a.epochs} epochs"))
    print(f"{'trial':<28} {'verdict':<9} {'E meV/atom':>10} {'F meV/Å':>9} {'MD failed':>9} {'train s':>8} "
          f"{'score s':>8}  foundation")
    for r in rows:
        m, w = r.get("metrics") or {}, r.get("wall") or {}
        print(f"{r['hypothesis']:<28} {r['verdict']:<9} {m.get('energy_rmse', float('nan')):>10.2f} "
              f"{m.get('force_rmse', float('nan')):>9.1f} {m.get('md_failed_runs', float('nan')):>9.0f} "
              f"{w.get('train', float('nan')):>8.1f} {w.get('score', float('nan')):>8.1f}  {r.get('foundation') or '-'}")


if __name__ == "__main__":
    main()
