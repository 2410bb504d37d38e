"""Cu EMT sealed vs unsealed: the same trials (shipped baseline, the expert's energy re-weighting fix)
with sandbox = bwrap and sandbox = none, through the real harness. Prints each trial's metrics (they
should agree to float precision: the sandbox changes where training runs, not what it computes) and
what sealing costs per trial: extracting the commit, starting bwrap, and the export step that hands
the model over as data.

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/sandbox_overhead.py [--size small|default]
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402
from baseline_vs_fix import set_config  # noqa: E402  -- the sibling script's config edit

SCRIPT = [
    ("baseline: the shipped mace-torch defaults", {}),
    ("expert: energy_weight 100, forces_weight 10, 10 epochs",
     {"energy_weight": "100.0", "forces_weight": "10.0", "max_num_epochs": "10"}),
]
METRICS = ("energy_rmse", "force_rmse", "md_failed_runs", "composite")


def bwrap_start_ms(repeats: int = 20) -> float:
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "/bin/true"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="default")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlipilot-sandbox-bench-", dir="/var/tmp"))
    results = {}
    for sandbox in ("bwrap", "none"):
        run = base / sandbox
        init_run("cu_emt", run, executor="local", size=a.size, sandbox=sandbox, data_seed=0, progress=lambda s: None)
        trial = TrialRunner(load_run_config(run), progress=lambda s: None)
        for hypothesis, updates in SCRIPT:
            set_config(run / "train" / "config.yaml", updates)
            results[(sandbox, hypothesis)] = trial.run(hypothesis, agent="benchmark-script")
    print(f"bwrap start-up (median of 20, /bin/true): {bwrap_start_ms():.1f} ms")
    print(f"{'sandbox':8} {'trial':36} {'verdict':9} " + " ".join(f"{m:>14}" for m in METRICS)
          + f" {'prepare s':>9} {'train.py s':>10} {'export s':>8} {'score s':>7} {'total s':>7}")
    for (sandbox, hypothesis), r in results.items():
        m, w = r.get("metrics") or {}, r["wall"]
        values = [r.get("composite") if k == "composite" else m.get(k) for k in METRICS]
        print(f"{sandbox:8} {hypothesis[:36]:36} {r['verdict']:9} "
              + " ".join(f"{v:14.6f}" if isinstance(v, (int, float)) else f"{'-':>14}" for v in values)
              + f" {r.get('prepare_seconds', 0):9.3f} {w.get('train_train_py', 0):10.1f}"
                f" {w.get('train_export', 0):8.1f} {w.get('score', 0):7.1f} {w['total']:7.1f}")
    for hypothesis, _ in SCRIPT:
        sealed, open_ = results[("bwrap", hypothesis)], results[("none", hypothesis)]
        diffs = {k: abs((sealed["metrics"] or {}).get(k, 0) - (open_["metrics"] or {}).get(k, 0))
                 for k in ("energy_rmse", "force_rmse")}
        cost = sealed.get("prepare_seconds", 0) + sealed["wall"].get("train_export", 0)
        print(f"{hypothesis[:40]}: |Δ E| {diffs['energy_rmse']:.2e} meV/atom, |Δ F| {diffs['force_rmse']:.2e} meV/Å; "
              f"sealing cost {cost:.2f} s = {100 * cost / sealed['wall']['total']:.1f} % of the sealed trial "
              f"(of which the export step {sealed['wall'].get('train_export', 0):.2f} s)")
    print(f"runs: {base}")


if __name__ == "__main__":
    main()
