"""What one experiment costs, phase by phase: training, export, scoring, harness overhead.

For each benchmark (the shipped cu_emt and qm7_b3lyp baselines and the own-system example, a Cu-Au
alloy written by mlipilot.datasets.alloy_emt): one baseline trial through the real harness (local
executor, the sandbox init probes), then prints training s (train.py), export s, scoring s by phase,
(export + scoring) / training, the harness overhead (trial wall minus the job's train.py, export and
scoring) as % of the trial, the scorer's MD steps per CPU-s beside the raw model call rate (energy +
forces on the throughput structure, one thread, CPU time), and experiments per hour — from the
baseline trial's wall, and, with --expert-iterations N > 0, measured by running the expert agent for
N iterations with K = 1 and K = 2 candidates at a time (on cu_emt only unless --expert-all).

    OMP_NUM_THREADS=1 python benchmarks/speed.py [--benchmarks cu_emt qm7_b3lyp own] [--size default]
                                                 [--expert-iterations 2] [--expert-all]
                                                 [--train-threads auto 1 2]

`--train-threads`: the training job's threads per trial table (issue 37): `auto` (mlipilot.cores: the
held cores less what is busy), or a fixed count (MLIPILOT_TRAIN_THREADS). Each table says what it used.

Run it on a quiet machine: every figure is wall or CPU time of this machine, as it is loaded.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.cores import ENV  # noqa: E402
from mlipilot.ledger import Ledger  # noqa: E402
from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402


def raw_call_rate(model_dir: Path, cfg, holdout: Path, seconds: float = 5.0,
                  mace_calculator: bool = False) -> tuple[float, int]:
    """Energy + forces calls per CPU-second of the trial's model on the scorecard's throughput
    structure (positions moved a little between calls, so nothing is cached), and its atom count:
    through the scorer's calculator, or with `mace_calculator` through mace-torch's MACECalculator."""
    import numpy as np
    from ase.io import read

    from mlipilot.scorecard.evaluate import MD_STRUCTURES, load_model, md_start_frames
    from mlipilot.scorecard.spec import load_spec
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS

    spec = load_spec(cfg.store / "scorecard.yaml")
    frames = read(holdout, index=":", format="extxyz")
    kind = STABILITY_KINDS[spec.stability.kind]
    atoms = kind.throughput_structure(spec, md_start_frames(frames, holdout.with_name(MD_STRUCTURES))).copy()
    atoms.calc = load_model(model_dir)
    if mace_calculator:
        from mace.calculators import MACECalculator

        atoms.calc = MACECalculator(models=atoms.calc.models, device="cpu", default_dtype=atoms.calc.default_dtype)
    rng = np.random.default_rng(0)
    start = atoms.get_positions()
    atoms.get_forces()  # first call (build, neighbour list) not counted
    n, c0 = 0, time.process_time()
    while time.process_time() - c0 < seconds:
        atoms.set_positions(start + rng.normal(0, 0.01, start.shape))
        atoms.get_potential_energy(), atoms.get_forces()
        n += 1
    return n / (time.process_time() - c0), len(atoms)


def make_run(benchmark: str, base: Path, size: str) -> Path:
    run = base / benchmark
    if benchmark == "own":
        from mlipilot.datasets.alloy_emt import write_benchmark

        bench = write_benchmark(base / "own-bench", size="small")
        init_run(str(bench), run, executor="local", progress=lambda s: None)
    else:
        init_run(benchmark, run, executor="local", size=size, data_seed=0, progress=lambda s: None)
    return run


def trial_table(benchmark: str, base: Path, size: str, label: str = "") -> dict:
    run = make_run(benchmark, base / label if label else base, size)
    cfg = load_run_config(run)
    lines: list[str] = []
    t = TrialRunner(cfg, progress=lines.append)
    w0 = time.perf_counter()
    row = t.run("baseline", agent="benchmark-script")
    trial_wall = time.perf_counter() - w0
    wall, m = row.get("wall", {}), row.get("metrics") or {}
    train_py, export = wall.get("train_train_py", wall.get("train", 0.0)), wall.get("train_export", 0.0)
    score = wall.get("score", 0.0)
    phases = m.get("score_seconds") or {}
    overhead = trial_wall - train_py - export - score
    rate, atoms = raw_call_rate(Path(row["trial_dir"]) / "model", cfg, t.holdout)
    mace_rate, _ = raw_call_rate(Path(row["trial_dir"]) / "model", cfg, t.holdout, mace_calculator=True)
    md = m.get("steps_per_cpu_second", float("nan"))
    threads = next((x.split(" on ")[-1].split(" (")[0] for x in lines if x.strip().startswith("trained in")), "?")
    print(f"\n== {benchmark}{f' [{label}]' if label else ''}: verdict {row.get('verdict')}, composite "
          f"{row.get('composite')}, sandbox {t.sandbox.kind}, training on {threads}")
    print(f"  training (train.py)     {train_py:8.1f} s")
    print(f"  export                  {export:8.1f} s")
    print(f"  scoring                 {score:8.1f} s   "
          + ", ".join(f"{k} {v:.1f}" for k, v in phases.items() if isinstance(v, (int, float)) and k != "total"))
    print(f"  (export+scoring)/train  {(export + score) / max(train_py, 1e-9):8.2f}")
    load = phases.get("load_smoke", float("nan"))
    print(f"  start-up                {export + load:8.1f} s (export step {export:.1f} + scorer model build and "
          f"first call {load:.1f})")
    export_log = Path(row["trial_dir"]) / "export.log"
    for line in export_log.read_text().splitlines() if export_log.exists() else []:
        if line.startswith("model export:"):
            print(f"    {line.split(' -> ')[-1] if '(' in line.split(' -> ')[-1] else line}")
    print(f"  harness overhead        {overhead:8.1f} s = {100 * overhead / trial_wall:.1f} % of the trial "
          f"({trial_wall:.1f} s; queue {wall.get('queue', 0):.1f} s, prepare {row.get('prepare_seconds', 0):.1f} s)")
    print(f"  scorer MD               {md:8.1f} steps/CPU-s vs raw model {rate:.1f} calls/CPU-s "
          f"({100 * md / rate:.0f} %), {atoms} atoms; MACECalculator {mace_rate:.1f} calls/CPU-s")
    print(f"  experiments per hour    {3600 / trial_wall:8.1f} (one trial after another, from this trial's wall)")
    for key in ("energy_rmse", "force_rmse", "md_failed_runs"):
        if key in m:
            print(f"  {key:22}  {m[key]:.4g}")
    return {"trial_wall": trial_wall}


def expert_rate(benchmark: str, base: Path, size: str, iterations: int, parallel: int) -> None:
    from mlipilot.agent_loop import Budget, run_agent
    from mlipilot.agents import open_agent

    run = make_run(benchmark, base / f"expert-k{parallel}", size)
    cfg = load_run_config(run)
    w0 = time.perf_counter()
    with open_agent("expert", seed=0) as agent:
        run_agent(cfg, agent, Budget(iterations=iterations, parallel=parallel), progress=lambda s: None)
    wall = time.perf_counter() - w0
    n = len(list(Ledger(cfg.store / "ledger.jsonl").trials()))
    threads = os.environ.get(ENV, "auto")
    print(f"  expert K={parallel} (training threads {threads}): {n} trials (baseline included) in {wall:.0f} s -> {3600 * n / wall:.1f} experiments/hour")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmarks", nargs="+", default=["cu_emt", "qm7_b3lyp", "own"])
    p.add_argument("--size", default="default")
    p.add_argument("--expert-iterations", type=int, default=2)
    p.add_argument("--expert-all", action="store_true", help="measure the expert on every benchmark, not cu_emt only")
    p.add_argument("--train-threads", nargs="+", default=["auto"], help="auto, or fixed counts: one table each")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlipilot-speed-"))
    print(f"cores: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f}, runs under {base}")
    for bench in a.benchmarks:
        for threads in a.train_threads:
            if threads == "auto":
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = str(int(threads))
            label = f"threads-{threads}" if len(a.train_threads) > 1 else ""
            trial_table(bench, base, a.size, label)
            if a.expert_iterations > 0 and (a.expert_all or bench == "cu_emt"):
                for k in (1, 2):
                    expert_rate(bench, base / label if label else base, a.size, a.expert_iterations, k)
        os.environ.pop(ENV, None)


if __name__ == "__main__":
    main()
