"""The `mlipilot` command: thin argument parsing over init / trial / status."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

from mlipilot.demo import DEFAULT_AGENT as DEMO_AGENT
from mlipilot.errors import MLIPilotError
from mlipilot.executors import executor_names
from mlipilot.records import COMPLETED, ExitStatus

EXECUTOR_CHOICES = executor_names()  # --executor overrides: the registered names


def _cmd_init(a: argparse.Namespace) -> int:
    from mlipilot.rundir import init_run

    for flag, value in (("--train-timeout-min", a.train_timeout_min), ("--score-timeout-min", a.score_timeout_min)):
        if not value > 0:  # also refuses nan; mlipilot.toml is protected once the run exists
            raise MLIPilotError(f"{flag}: expected minutes > 0, got {value:g}")
    init_run(a.benchmark, Path(a.dir), store=a.store, executor=a.executor, size=a.size, sandbox=a.sandbox,
             data_seed=a.data_seed, train_timeout_min=a.train_timeout_min, score_timeout_min=a.score_timeout_min,
             foundation=a.foundation)
    print(f"next: cd {a.dir} && mlipilot trial -m baseline")
    return 0


def _cmd_trial(a: argparse.Namespace) -> int:
    from mlipilot.records import VerdictKind
    from mlipilot.run_config import load_run_config
    from mlipilot.trial import TrialRunner

    cfg = load_run_config(Path(a.run))
    if a.executor:
        cfg = dataclasses.replace(cfg, executor=a.executor)
    record = TrialRunner(cfg).run(a.message)
    return 0 if record.verdict in (VerdictKind.ACCEPTED, VerdictKind.REJECTED) else 3


def _cmd_noise(a: argparse.Namespace) -> int:
    from mlipilot.run_config import load_run_config
    from mlipilot.trial import TrialRunner

    cfg = load_run_config(Path(a.run))
    if a.executor:
        cfg = dataclasses.replace(cfg, executor=a.executor)
    e = TrialRunner(cfg).measure_noise(a.seeds)
    print(f"noise of trial {e.incumbent_trial} over harness seeds {e.seeds} ({e.wall_s:.0f} s):")
    print(f"  composite: {', '.join(f'{x:.4f}' for x in e.composite)}  sigma {e.sigma_composite:.4g}")
    print(f"  total violation: {', '.join(f'{x:.3f}' for x in e.total_violation)}  sigma {e.sigma_violation:.4g}")
    for m in ("energy_rmse", "force_rmse", "steps_per_cpu_second", "steps_per_second"):
        if m in e.values:
            print(f"  {m}: {', '.join(f'{x:.4g}' for x in e.values[m])}  sigma {e.sigma[m]:.4g}")
    print(f"margin from now on: max(noise_margin x incumbent, {cfg.noise.z:g} x sigma); close calls under "
          f"{cfg.noise.confirm:g} sigma are confirmed with a second seed")
    return 0


def _echo(text: str) -> None:
    """Print what quotes agents' text, logs or commits (older or hand-made ones too) without terminal
    controls: a carriage return or an escape sequence could make a failed trial read as accepted."""
    from mlipilot.sanitize import strip_controls

    print(strip_controls(text))


def _cmd_status(a: argparse.Namespace) -> int:
    from mlipilot.run_config import load_run_config
    from mlipilot.sanitize import single_line
    from mlipilot.store import Store
    from mlipilot.trial import dumps, trial_summary

    cfg = load_run_config(Path(a.run))
    ledger = Store(cfg.store).ledger
    if problem := ledger.verify():
        raise MLIPilotError(f"store integrity: {problem}")
    rows = [trial_summary(r) for r in ledger.latest()]
    best = ledger.incumbent()
    if a.json:
        print(dumps({"run": cfg.name, "branch": cfg.branch, "trials": rows,
                     "best": trial_summary(best) if best else None}))
        return 0
    _echo(f"run {cfg.name}  branch {cfg.branch}  store {cfg.store}")
    _echo(f"{'trial':>5}  {'verdict':9} {'composite':>9} {'E meV/at':>9} {'F meV/Å':>8} {'MD fail':>7}  hypothesis")
    for r in rows:
        fmt = lambda v, f: (f.format(v) if isinstance(v, (int, float)) else "-")  # noqa: E731
        _echo(f"{r['trial']:>5}  {r['verdict'] or 'running':9} {fmt(r['composite'], '{:9.4f}'):>9} "
              f"{fmt(r['energy_rmse'], '{:9.2f}'):>9} {fmt(r['force_rmse'], '{:8.1f}'):>8} "
              f"{fmt(r['md_failed_runs'], '{:7.0f}'):>7}  {single_line(r['hypothesis'] or '', 60)}")
    if best:
        _echo(f"best: trial {best.trial} ({'feasible' if best.feasible else 'infeasible'}), "
              f"composite {best.composite:.4f}")
    return 0


def _cmd_run(a: argparse.Namespace) -> int:
    from mlipilot.agent_loop import Budget, run_agent
    from mlipilot.agents import open_agent
    from mlipilot.run_config import load_run_config

    cfg = load_run_config(Path(a.run))
    if a.executor:
        cfg = dataclasses.replace(cfg, executor=a.executor)
    opts = cfg.agent
    pick = lambda flag, key, default=None: flag if flag is not None else opts.get(key, default)  # noqa: E731
    budget = Budget(iterations=pick(a.iterations, "iterations", 10),
                    llm_calls_per_iteration=pick(a.llm_calls, "llm_calls_per_iteration", 12),
                    max_tokens=pick(a.max_tokens, "max_tokens"), max_cost=pick(a.max_cost, "max_cost"),
                    max_wall_min=pick(a.max_wall_min, "max_wall_min"), parallel=a.parallel)
    spec = pick(a.agent, "model", "expert")
    with open_agent(spec, seed=pick(a.seed, "seed", 0), api_base=pick(a.api_base, "api_base"),
                    api_key_env=pick(a.api_key_env, "api_key_env")) as agent:
        status = run_agent(cfg, agent, budget)
    return 0 if status in COMPLETED else 4


def _cmd_log(a: argparse.Namespace) -> int:
    from mlipilot.audit import GIT_ONE_LINER, audit
    from mlipilot.data_commits import carried_data, data_commits_between, describe, trial_parent
    from mlipilot.run_config import load_run_config
    from mlipilot.sanitize import single_line
    from mlipilot.store import Store
    from mlipilot.trial import dumps

    try:
        store = load_run_config(Path(a.run)).store
    except MLIPilotError:  # a clone without its store: git alone answers
        store = None
    if store is not None and (problem := Store(store).ledger.verify()):
        raise MLIPilotError(f"store integrity: {problem}")
    entries = audit(Path(a.run), include_rejected=a.all)
    if a.json:
        print(dumps(entries))
        return 0
    _echo(f"{'trial':>5}  {'verdict':9} {'commit':8} {'composite':>9} {'Δcomposite':>10} {'ΔE meV/at':>9} "
          f"{'ΔF meV/Å':>8}  hypothesis")
    for e in entries:
        d, m = e["delta"], e["metrics"]
        f = lambda v, spec: format(v, spec) if isinstance(v, float) else "-"  # noqa: E731
        _echo(f"{e['trial']:>5}  {e['verdict'] or '?':9} {e['commit'][:8]} {f(m.get('composite'), '9.4f'):>9} "
              f"{f(d.get('composite'), '+10.4f'):>10} {f(d.get('energy_rmse'), '+9.2f'):>9} "
              f"{f(d.get('force_rmse'), '+8.1f'):>8}  {single_line(e['hypothesis'], 70)}")
        if e.get("flags"):
            _echo(f"{'':>5}  FLAGGED: {single_line(e['flags'], 150)}")
        for d in carried_data(Path(a.run), e["commit"]):  # the data commits this trial trained with
            _echo(f"{'':>7}{describe(d)}")
        if v := e.get("validation"):  # mlipilot validate's note on the commit
            _echo(f"{'':>7}validated: {v['validated']}" + (f" ({v['failed']})" if v["validated"] != "pass" else ""))
    for d in data_commits_between(Path(a.run), trial_parent(Path(a.run)), "HEAD"):
        _echo(f"{'pending':>7}  {describe(d)} — no trial has trained on it yet")
    if not a.all:
        _echo(f"(accepted trials only; --all adds refs/mlipilot/rejected/*. Without MLIPilot: {GIT_ONE_LINER})")
    return 0


def _cmd_show(a: argparse.Namespace) -> int:
    from mlipilot.audit import LOG_TAIL_LINES, show
    from mlipilot.run_config import load_run_config
    from mlipilot.trial import dumps

    store = None
    try:
        store = load_run_config(Path(a.run)).store
    except Exception:  # a clone without its store: git alone still answers
        pass
    e = show(Path(a.run), a.trial, store)
    if a.json:
        print(dumps(e))
        return 0
    _echo(f"trial {e['trial']}: {e['verdict']} ({e['ref']}, commit {e['commit'][:12]})")
    _echo(f"hypothesis: {e['hypothesis']}")
    _echo(f"agent: {e['agent']} ({e['model']})")
    if e["trailers"].get("Foundation"):
        _echo(f"fine-tuned from: foundation model {e['trailers']['Foundation']} (name, sha256 prefix)")
    _echo(f"reason: {e['reason']}")
    from mlipilot.data_commits import frames_at

    _echo("trained on: " + ", ".join(f"{name} ({n} frames)" for name, n in frames_at(Path(a.run), e["commit"]).items()))
    if valid := frames_at(Path(a.run), e["commit"], "valid"):
        _echo("validation frames added (checkpoint choice, not trained on): "
              + ", ".join(f"{name} ({n} frames)" for name, n in valid.items()))
    _echo("metrics: " + ", ".join(f"{k} {v:g}" for k, v in e["metrics"].items() if isinstance(v, (int, float))))
    for line in score_tables(e.get("scored") or {}):
        _echo(line)
    if e.get("scorecard_json"):
        _echo(f"full scorecard: {e['scorecard_json']}")
    if e.get("train_log"):
        _echo(f"training log, last {LOG_TAIL_LINES} lines ({e['train_log']}):")
        _echo("\n".join(f"  | {line}" for line in e["log_tail"].splitlines()) or "  (empty)")
    for run in e.get("seeds") or []:
        _echo(f"seed {run['seed']}: composite {run['composite']}, " + ", ".join(
            f"{k} {v:g}" for k, v in (run.get("metrics") or {}).items() if k in ("energy_rmse", "force_rmse")))
    _echo(e["diff"] or "(no diff)")
    return 0


def score_tables(metrics: dict) -> list[str]:
    """`show`'s tables from a scored trial's metrics: force errors per element, errors per config_type
    (and the worst one), one line per MD run: what a constraint on one of them failed on."""
    from mlipilot.scorecard.metrics import MetricKind, parse_metric

    num = lambda v: format(v, ".4g") if isinstance(v, (int, float)) else "-"  # noqa: E731
    tables: dict[MetricKind, dict[str, dict[str, float]]] = {MetricKind.ELEMENT: {}, MetricKind.GROUP: {}}
    for name, value in metrics.items():
        ref = parse_metric(name) if isinstance(value, (int, float)) and not name.endswith("_max_group") else None
        if ref is not None and ref.kind in tables:
            tables[ref.kind].setdefault(ref.selector, {})[ref.quantity] = value
    lines = []
    for kind, title in ((MetricKind.ELEMENT, "per element (meV/Å)"), (MetricKind.GROUP, "per config_type "
                                                                      "(energy meV/atom, force meV/Å)")):
        if not (rows := tables[kind]):
            continue
        cols = [q for q in ("energy_rmse", "energy_mae", "force_rmse", "force_mae") if any(q in r for r in rows.values())]
        width = max(len(k) for k in rows) + 2
        lines += [f"{title}:", "  " + "".ljust(width) + "".join(f"{c:>12}" for c in cols)]
        lines += ["  " + k.ljust(width) + "".join(f"{num(r.get(c)):>12}" for c in cols) for k, r in sorted(rows.items())]
    if worst := [f"{k} {num(metrics[k])}" for k in ("energy_rmse_max_group", "force_rmse_max_group") if k in metrics]:
        lines.append("worst config_type: " + ", ".join(worst))
    if isinstance(runs := metrics.get("md_runs"), dict) and runs:
        width = max(len(str(k)) for k in runs) + 2
        lines.append("MD runs:")
        for name, r in runs.items():
            r = r if isinstance(r, dict) else {}
            state = "skipped" if r.get("skipped") else "ok" if r.get("ok") else "FAILED"
            why = r.get("skipped") or r.get("reason") or ""
            lines.append(f"  {str(name).ljust(width)}{state:8} {r.get('steps', '-')!s:>6} steps  {why}".rstrip())
    return lines


def _cmd_bench(a: argparse.Namespace) -> int:
    from mlipilot.agents import check_agent_spec
    from mlipilot.comparison import run_bench

    agents = [x.strip() for x in a.agents.split(",") if x.strip()]
    for spec in agents:  # a typo fails before any run is made
        check_agent_spec(spec)
    result = run_bench(a.benchmark, agents, a.seeds, a.iterations, Path(a.out), executor=a.executor,
                       size=a.size, api_base=a.api_base, parallel_runs=a.parallel_runs,
                       allow_mixed_sandbox=a.allow_mixed_sandbox, validate=a.validate, data_seed=a.data_seed)
    print(result["summary"].to_string(index=False))
    return 0 if not result["incomplete"] else 5


def _cmd_report(a: argparse.Namespace) -> int:
    from mlipilot.report import write_report

    if a.path and a.run:
        raise MLIPilotError(f"mlipilot report: both PATH ({a.path}) and --run ({a.run}) given — pass one")
    path = Path(a.path or a.run or Path.cwd())  # like every other command: the current run by default
    print(f"report: {write_report(path, Path(a.out) if a.out else None)}")
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from mlipilot.mlflow_export import export_mlflow

    if a.path and a.run:
        raise MLIPilotError(f"mlipilot export: both PATH ({a.path}) and --run ({a.run}) given — pass one")
    export_mlflow(Path(a.path or a.run or Path.cwd()), a.tracking_uri)  # like report: the current run by default
    return 0


def _cmd_validate(a: argparse.Namespace) -> int:
    from mlipilot.run_config import load_run_config
    from mlipilot.validate import validate_run

    cfg = load_run_config(Path(a.run))
    done = validate_run(cfg, trial=a.trial, accepted=a.accepted, executor=a.executor, timeout_min=a.timeout_min,
                        reseal=a.reseal_spec)
    if a.json:
        print(json.dumps(done, indent=1))
    return 0 if all(v["passed"] for v in done) else 3


def _cmd_data(a: argparse.Namespace) -> int:
    from mlipilot.datasets import qm7_b3lyp
    from mlipilot.jobs import make_executor
    from mlipilot.resources import cache_dir

    if a.benchmark != "qm7_b3lyp":
        raise MLIPilotError(f"mlipilot data {a.benchmark}: only qm7_b3lyp has reference labels to compute "
                            "(cu_emt is generated by `mlipilot init` in seconds)")
    executor = None
    if a.executor != "inline":
        executor = make_executor(a.executor, Path(a.out).parent / "label-jobs", timeout_min=60,
                                 stage="label")  # one CPU per labelling job
    qm7_b3lyp.extend(Path(a.out), a.per_molecule, a.sigma, a.seed, cache_dir() / "labels", executor, a.size)
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from mlipilot.agents import check_agent_spec
    from mlipilot.demo import run_demo

    check_agent_spec(a.agent)

    status = run_demo(Path(a.dir) if a.dir else None, agent=a.agent, iterations=a.iterations, size=a.size,
                      executor=a.executor)
    return 0 if status != ExitStatus.LLM_ERROR else 4


def _job_executors() -> list[str]:
    """Executors whose jobs run outside this process (an in-process one would be `inline` again)."""
    from mlipilot.executors import get_executor

    return [n for n in EXECUTOR_CHOICES if not get_executor(n).in_process]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlipilot", description="Auto-research on MACE interatomic potentials.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="make a run directory from a benchmark")
    s.add_argument("benchmark", help="shipped benchmark name (cu_emt) or a folder with benchmark.yaml")
    s.add_argument("dir", help="new run directory")
    s.add_argument("--store", help="private store (default: DIR.mlipilot-store beside the run)")
    s.add_argument("--executor", default="local",
                   help=f"{' | '.join(EXECUTOR_CHOICES)} (default local), or a dotted package.module:Class")
    s.add_argument("--size", default="default", help="dataset size for generated benchmarks: default | small")
    s.add_argument("--sandbox", choices=["bwrap", "apptainer", "none"],
                   help="where train/train.py runs (default: bwrap if it works here, else none, said loudly)")
    s.add_argument("--data-seed", type=int, help="a generated benchmark's data seed, for a reproducible holdout "
                   "that anyone who knows the seed can regenerate (default: drawn privately, kept in the store)")
    s.add_argument("--foundation", action="append", metavar="NAME=PATH",
                   help="a MACE model file to fine-tune from (repeatable); checked, copied into the store and "
                        "sealed; train/config.yaml's foundation_model: NAME picks it")
    s.add_argument("--train-timeout-min", type=float, default=30.0,
                   help="time limit of each training job in minutes (default 30; mlipilot.toml, fixed after init)")
    s.add_argument("--score-timeout-min", type=float, default=10.0,
                   help="time limit of each scoring job in minutes (default 10; mlipilot.toml, fixed after init)")
    s.set_defaults(func=_cmd_init)

    s = sub.add_parser("trial", help="commit the edits under train/, train, score, accept or revert")
    s.add_argument("-m", "--message", required=True, help="the hypothesis this edit tests")
    s.add_argument("--run", default=".", help="run directory (default: current)")
    s.add_argument("--executor", choices=EXECUTOR_CHOICES, help="override mlipilot.toml's executor")
    s.set_defaults(func=_cmd_trial)

    s = sub.add_parser("noise", help="train the incumbent with K harness seeds; its spread sets the margin")
    s.add_argument("--seeds", type=int, help="trainings in all, the incumbent's own included (default: "
                   "mlipilot.toml [noise] seeds, 3)")
    s.add_argument("--run", default=".", help="run directory (default: current)")
    s.add_argument("--executor", choices=EXECUTOR_CHOICES, help="override mlipilot.toml's executor")
    s.set_defaults(func=_cmd_noise)

    s = sub.add_parser("status", help="trials so far and the best model")
    s.add_argument("--run", default=".", help="run directory (default: current)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_status)
    s = sub.add_parser("run", help="let an agent run experiments until a budget is spent (resumable)")
    s.add_argument("--run", default=".", help="run directory (default: current)")
    s.add_argument("--agent", help="expert | random | optuna | local:qwen2.5-coder-0.5b | a litellm model "
                   "string such as openai/gpt-4.1 (default: mlipilot.toml [agent] model)")
    s.add_argument("--iterations", type=int, help="experiments in total, counting earlier ones in this run")
    s.add_argument("--llm-calls", type=int, help="max LLM calls per iteration")
    s.add_argument("--max-tokens", type=int, help="token budget for the whole run")
    s.add_argument("--max-cost", type=float, help="cost budget (USD) where litellm can price the model")
    s.add_argument("--max-wall-min", type=float, help="wall-time budget for this invocation")
    s.add_argument("--api-base", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    s.add_argument("--api-key-env", help="environment variable holding the API key")
    s.add_argument("--seed", type=int, help="seed for the random and optuna baselines")
    s.add_argument("--parallel", type=int, default=1, help="train K candidate edits at once (git worktrees)")
    s.add_argument("--executor", choices=EXECUTOR_CHOICES, help="override mlipilot.toml's executor")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("bench", help="several agents x seeds on one benchmark from an identical start")
    s.add_argument("--benchmark", default="cu_emt")
    s.add_argument("--agents", required=True, help="comma-separated agent specs, e.g. expert,random,openai/gpt-4.1")
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--iterations", type=int, default=10)
    s.add_argument("--executor", default="local", choices=EXECUTOR_CHOICES)
    s.add_argument("--size", default="default", help="dataset size for generated benchmarks")
    s.add_argument("--data-seed", type=int, help="data seed for generated benchmarks, public (default: one drawn "
                   "privately for the whole bench, kept in every run's store)")
    s.add_argument("--api-base", help="OpenAI-compatible endpoint for LLM agents")
    s.add_argument("--parallel-runs", type=int, default=1,
                   help="with --executor slurm: (agent, seed) launcher jobs running at once (default 1)")
    s.add_argument("--allow-mixed-sandbox", action="store_true",
                   help="compare runs even when their training sandboxes differ (e.g. bwrap and none)")
    s.add_argument("--validate", action="store_true",
                   help="then put each finished run's final best model through `mlipilot validate` (the "
                   "benchmark's private validation spec; done once per model, a re-run skips it)")
    s.add_argument("--out", required=True, help="bench directory (re-run to resume)")
    s.set_defaults(func=_cmd_bench)

    s = sub.add_parser("report", help="figures + report.html for a bench or a run directory")
    s.add_argument("path", nargs="?", help="bench directory or run directory (default: the current run)")
    s.add_argument("--run", help="run directory (the same as PATH)")
    s.add_argument("--out", help="output folder (default: PATH/report for a bench, the run's private store/report "
                   "for a run directory; never inside a run directory, whose next trial would refuse it)")
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("export", help="every trial of a run or bench as an MLflow run (pip install 'mlipilot[mlflow]')")
    s.add_argument("format", choices=["mlflow"])
    s.add_argument("path", nargs="?", help="bench directory or run directory (default: the current run)")
    s.add_argument("--run", help="run directory (the same as PATH)")
    s.add_argument("--tracking-uri", default="./mlruns", help="a folder (default ./mlruns, relative to the current "
                   "directory), a file: URI, or any MLflow tracking URI (sqlite:///mlflow.db, http://host:5000)")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("validate", help="put accepted models through the private validation suite (longer MD, "
                       "properties never trained on); exit 3 when a model fails a check")
    s.add_argument("run", nargs="?", default=".", help="run directory")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the current best model (the default)")
    which.add_argument("--accepted", action="store_true", help="every accepted model")
    which.add_argument("--trial", type=int, help="one scored trial")
    s.add_argument("--executor", choices=EXECUTOR_CHOICES, help="default: the run's executor")
    s.add_argument("--timeout-min", type=float, default=30.0, help="time limit per validation job")
    s.add_argument("--reseal-spec", action="store_true", help="seal the benchmark's current validation spec into "
                   "the run's store and use it (one added or edited after init; without this it is refused)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("data", help="extend the molecular set: label new geometries with PySCF (cached)")
    s.add_argument("benchmark", help="qm7_b3lyp")
    s.add_argument("--out", required=True, help="extxyz to write (shipped set + new geometries)")
    s.add_argument("--per-molecule", type=int, default=1, help="new rattled geometries per molecule")
    s.add_argument("--sigma", type=float, default=0.06, help="rattle amplitude in Å")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--size", default="default", help="default (≤ 5 heavy atoms) | small (≤ 3) | tiny (1)")
    s.add_argument("--executor", default="inline", choices=["inline", *_job_executors()],
                   help="inline (this process), or one submitit job per geometry (array jobs on Slurm)")
    s.set_defaults(func=_cmd_data)

    s = sub.add_parser("log", help="accepted changes from git trailers alone (--all: rejected/failed too)")
    s.add_argument("run", nargs="?", default=".", help="run directory or a clone of one")
    s.add_argument("--all", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_log)

    s = sub.add_parser("show", help="one trial: diff, scorecard metrics, verdict reason")
    s.add_argument("trial", type=int)
    s.add_argument("--run", default=".", help="run directory or a clone of one")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_show)

    s = sub.add_parser("demo", help="a Cu EMT run with the embedded offline LLM (or --agent expert)")
    s.add_argument("--dir", help="run directory (default: a new temporary one; an existing run resumes)")
    s.add_argument("--agent", default=DEMO_AGENT, help=f"agent spec, as for `mlipilot run` (default {DEMO_AGENT}: "
                   "the embedded model that did best in benchmarks/cu_emt/agent_quality.py)")
    s.add_argument("--iterations", type=int, default=3)
    s.add_argument("--size", default="default", help="default | small")
    s.add_argument("--executor", default="local", choices=EXECUTOR_CHOICES)
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    # one thread everywhere: two threads on a busy 2-core box were measured 10-18x slower
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: never fetch a price list
    # mace-torch sets this variable itself and e3nn then warns on every import: nothing a user can act on
    warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MLIPilotError as e:
        print(f"mlipilot: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlipilot: interrupted; the ledger records the trial as submitted and the next command "
              "repairs it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
