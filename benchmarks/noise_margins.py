"""Seed noise of the shipped baselines and what it does to verdicts.

For each benchmark: the shipped baseline (harness seed 1), then `measure_noise` with K seeds, printing
every gated metric per seed, sigma, the resulting margin and the cost in training minutes. Then the
expert agent's first iterations on Cu, twice, with harness base seeds 1 and 2, and whether their
verdicts agree.

    OMP_NUM_THREADS=1 python benchmarks/noise_margins.py [--seeds 3] [--expert-iterations 3] [--size default]
"""

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.agent_loop import Budget, run_agent  # noqa: E402
from mlipilot.agents import open_agent  # noqa: E402
from mlipilot.ledger import Ledger  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.scorecard.verdict import assess  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402

SHOWN = ("energy_rmse", "force_rmse", "md_failed_runs", "steps_per_cpu_second", "steps_per_second")


def noise_table(benchmark: str, base: Path, seeds: int, size: str) -> None:
    run = base / benchmark
    init_run(benchmark, run, executor="local", size=size, data_seed=0, progress=lambda s: None)
    cfg = load_run_config(run)
    t = TrialRunner(cfg, progress=lambda s: None)
    row = t.run("baseline", agent="benchmark-script")
    e = t.measure_noise(seeds)
    a = assess(row["metrics"], t.spec)
    train_min = sum(r["wall"].get("train", 0) for r in Ledger(cfg.store / "ledger.jsonl").trials()) / 60
    print(f"\n== {benchmark} ({size}): baseline {'feasible' if a.feasible else 'infeasible'}, seeds {e['seeds']}")
    for m in SHOWN:
        if m in e["values"]:
            print(f"  {m:22} " + " ".join(f"{x:10.4g}" for x in e["values"][m]) + f"   sigma {e['sigma'][m]:.4g}")
    print(f"  {'composite':22} " + " ".join(f"{x:10.4g}" for x in e["composite"]) + f"   sigma {e['sigma_composite']:.4g}")
    print(f"  {'total violation':22} " + " ".join(f"{x:10.4g}" for x in e["total_violation"])
          + f"   sigma {e['sigma_violation']:.4g}")
    ref, sigma = (a.composite, e["sigma_composite"]) if a.feasible else (a.total_violation, e["sigma_violation"])
    print(f"  margin: 2 % noise_margin = {t.spec.noise_margin * abs(ref):.4g}; z sigma = {cfg.noise.z * sigma:.4g}"
          f" -> {max(t.spec.noise_margin * abs(ref), cfg.noise.z * sigma):.4g}")
    print(f"  cost: {e['wall_s'] / 60:.1f} min wall for {seeds - 1} extra trainings+scorings "
          f"(baseline training {train_min:.1f} min)")


def expert_twice(base: Path, iterations: int, size: str) -> None:
    verdicts = {}
    for seed in (1, 2):
        run = base / f"expert-seed{seed}"
        init_run("cu_emt", run, executor="local", size=size, data_seed=0, progress=lambda s: None)
        cfg = load_run_config(run)
        cfg = dataclasses.replace(cfg, noise=dataclasses.replace(cfg.noise, base_seed=seed))
        with open_agent("expert", seed=0) as agent:
            run_agent(cfg, agent, Budget(iterations=iterations), progress=lambda s: None)
        verdicts[seed] = [(r["hypothesis"][:50], r["verdict"], r.get("composite"))
                          for r in Ledger(cfg.store / "ledger.jsonl").trials()]
    print(f"\n== expert on cu_emt ({size}), {iterations} iterations, harness base seed 1 vs 2")
    agree = 0
    for (h, v1, c1), (_, v2, c2) in zip(verdicts[1], verdicts[2]):
        agree += v1 == v2
        print(f"  {h:50} seed 1: {v1:8} {c1 or float('nan'):8.4f}   seed 2: {v2:8} {c2 or float('nan'):8.4f}")
    print(f"  verdict agreement: {agree}/{min(len(verdicts[1]), len(verdicts[2]))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--expert-iterations", type=int, default=3)
    p.add_argument("--size", default="default")
    p.add_argument("--only", choices=["cu_emt", "qm7_b3lyp", "expert"], action="append")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlipilot-noise-", dir="/var/tmp"))
    for what in a.only or ["cu_emt", "qm7_b3lyp", "expert"]:
        if what == "expert":
            expert_twice(base, a.expert_iterations, a.size)
        else:
            noise_table(what, base, a.seeds, a.size)
    print(f"\nruns: {base}")


if __name__ == "__main__":
    main()
