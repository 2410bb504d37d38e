"""Experiments per hour with K candidates trained at once (git worktrees) versus one at a time.

Runs the random baseline for the same number of iterations with --parallel 1 and --parallel K on
the Cu benchmark (small data by default) and prints the wall time and experiments/hour of each.
Use the live cluster (`eval "$(bash tests/slurm/start_cluster.sh)"`, then --executor slurm) or the
local executor.

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/parallel_throughput.py --executor slurm --k 2 --iterations 4
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.agent_loop import Budget, run_agent  # noqa: E402
from mlipilot.agents import open_agent  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402


def one(k: int, iterations: int, executor: str, size: str, base: Path) -> float:
    root = init_run("cu_emt", base / f"k{k}", executor=executor, size=size, data_seed=0, progress=lambda s: None)
    cfg = load_run_config(root)
    t0 = time.time()
    with open_agent("random", seed=0) as agent:
        run_agent(cfg, agent, Budget(iterations=iterations, parallel=k), progress=lambda s: None)
    return time.time() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--executor", default="local", choices=["local", "slurm"])
    p.add_argument("--size", default="small")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlipilot-parallel-"))
    walls = {k: one(k, a.iterations, a.executor, a.size, base) for k in (1, a.k)}
    for k, wall in walls.items():
        print(f"K={k}: {a.iterations} experiments in {wall:6.1f} s -> {3600 * a.iterations / wall:6.1f} experiments/hour")
    print(f"gain: x{walls[1] / walls[a.k]:.2f} ({a.executor}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
