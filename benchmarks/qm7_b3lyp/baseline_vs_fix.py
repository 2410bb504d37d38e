"""Molecules (B3LYP/6-31G(d)): the shipped baseline is infeasible; the paper's fix (E0s from
isolated-atom B3LYP energies + energy re-weighting) is accepted; either half alone is not enough.

    OMP_NUM_THREADS=1 python benchmarks/qm7_b3lyp/baseline_vs_fix.py
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402

E0S = '"{1: -13.61311591800631, 6: -1029.8065882290819, 7: -1485.2757104517252, 8: -2042.4704390553575}"'
SCRIPT = [
    ("baseline: the shipped configuration", {}),
    ("energy re-weighting alone (100:10), 30 epochs",
     {"energy_weight": "100.0", "forces_weight": "10.0", "max_num_epochs": "30"}),
    ("E0s from isolated B3LYP atoms on top", {"E0s": E0S}),
]


def main() -> None:
    run = Path(tempfile.mkdtemp(prefix="mlipilot-qm7-")) / "run"
    init_run("qm7_b3lyp", run, executor="local", data_seed=0, progress=lambda s: None)
    trial = TrialRunner(load_run_config(run), progress=lambda s: None)
    cfg = run / "train" / "config.yaml"
    print(f"{'trial':>5} {'verdict':9} {'feasible':8} {'E':>7} {'E unseen':>8} {'F':>7} {'MDfail':>6} {'train s':>7} "
          f"{'score s':>7}  hypothesis")
    for hypothesis, updates in SCRIPT:
        text = cfg.read_text()
        for k, v in updates.items():
            text = "\n".join(f"{k}: {v}" if line.split(":")[0] == k else line for line in text.splitlines()) + "\n"
        cfg.write_text(text)
        r = trial.run(hypothesis, agent="benchmark-script")
        m = r.get("metrics") or {}
        print(f"{r['trial']:>5} {r['verdict']:9} {str(r['feasible']):8} {m.get('energy_rmse', 0):7.1f} "
              f"{m.get('energy_rmse_unseen_molecule', 0):8.1f} {m.get('force_rmse', 0):7.0f} "
              f"{m.get('md_failed_runs', 0):6.0f} {r['wall'].get('train', 0):7.1f} {r['wall'].get('score', 0):7.1f}"
              f"  {hypothesis}\n      -> {r['reason'][:140]}")
    print("units: meV/atom (E), meV/Å (F); run directory:", run)


if __name__ == "__main__":
    main()
