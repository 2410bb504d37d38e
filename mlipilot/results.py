"""The results table: one row per (agent, seed, iteration), built from each run's ledger."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlipilot.records import HARNESS_AGENT, FailureKind, IterationEvent, TrialRecord, ValidationEvent, VerdictKind
from mlipilot.scorecard.result import ScoreResult
from mlipilot.store import Store

COLUMNS = ["agent", "seed", "run", "iteration", "trial", "trial_agent", "verdict", "composite", "feasible",
           "total_violation", "best_so_far", "feasible_so_far", "tokens_in", "tokens_out", "cost", "tool_errors",
           "llm_calls", "job_failed", "job_timeout", "wall_llm", "wall_queue", "wall_train", "wall_score", "wall_total",
           "harness_seed", "confirm_seed", "confirm_composite", "margin", "noise_sigma",
           "harness_hash", "scorecard_hash", "validated", "validation_failed", "train_frames", "labels_spent",
           "hypothesis"]


def run_rows(store: Path, agent: str, seed: int, run: str) -> list[dict]:
    """Rows in iteration order: trials (latest record each) and iterations that ran no experiment."""
    ledger = Store(store).ledger
    items: list[TrialRecord | IterationEvent] = [*ledger.events(IterationEvent), *ledger.latest()]
    # `mlipilot validate`'s latest verdict per trial (a changed spec may redo it)
    validation = {int(v.validated_trial): v for v in ledger.events(ValidationEvent)}
    trial_of = lambda r: r.trial if isinstance(r, TrialRecord) else None  # noqa: E731
    items.sort(key=lambda r: (r.iteration if r.iteration is not None else trial_of(r) or 0, trial_of(r) or 0))
    rows, best, best_feasible, feasible_so_far = [], None, None, False
    first = 0 if items and items[0].agent == HARNESS_AGENT else 1  # the harness's baseline is iteration 0
    for i, r in enumerate(items, start=first):
        row = {"agent": agent, "seed": seed, "run": run, "iteration": i, "trial_agent": r.agent,  # a run can change hands
               "tokens_in": r.tokens_in or 0, "tokens_out": r.tokens_out or 0, "cost": r.cost,
               "tool_errors": r.tool_errors or 0, "llm_calls": r.llm_calls or 0, "wall_llm": r.llm_seconds,
               "validated": None, "validation_failed": None}  # None: never validated
        if isinstance(r, IterationEvent):
            rows.append(_event_row(row, r, best, best_feasible, feasible_so_far))
            continue
        verdict = r.verdict or r.status
        if verdict == VerdictKind.ACCEPTED:
            best, best_feasible = r.composite, bool(r.feasible)
            feasible_so_far = feasible_so_far or best_feasible
        wall, confirm, noise, hashes = r.wall or {}, r.confirm or {}, r.noise or {}, r.hashes or {}
        row.update({
            "trial": r.trial, "verdict": verdict, "composite": r.composite, "feasible": bool(r.feasible),
            "total_violation": r.total_violation, "best_so_far": best, "best_so_far_feasible": best_feasible,
            "feasible_so_far": feasible_so_far, "job_failed": verdict == VerdictKind.FAILED,
            "job_timeout": _timed_out(r), "wall_queue": wall.get("queue"), "wall_train": wall.get("train"),
            "wall_score": wall.get("score"), "wall_total": wall.get("total"), "harness_seed": r.seed,
            "confirm_seed": confirm.get("seed"), "confirm_composite": confirm.get("composite"), "margin": r.margin,
            "noise_sigma": noise.get("sigma_composite"), "harness_hash": hashes.get("harness"),
            "scorecard_hash": hashes.get("scorecard"),
            "foundation": r.foundation,  # `name sha256-prefix` of the model it fine-tuned from
            "train_frames": r.train_frames, "labels_spent": r.labels_spent,  # set once data actions added frames
            "hypothesis": r.hypothesis or None})
        if (v := validation.get(r.trial)) is not None:
            row.update(validated=bool(v.passed), validation_failed=",".join(v.failed_checks or []))
            row.update(validation_values(r.trial_dir))
        score = ScoreResult.of(r)
        if score is not None:
            for k, v in score.metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    row[f"metric_{k}"] = v
            for name, md in score.md_runs.items():  # a dict per MD run: flat columns for csv/parquet
                row[f"md_ok_{name}"] = float(bool(md.ok))  # 1/0, not bool: survives a csv round trip
                row[f"md_steps_{name}"] = md.steps
        for k, v in (r.violations or {}).items():
            row[f"violation_{k}"] = v
        rows.append(row)
    return rows


VALIDATION_PREFIX = "validation:"  # validation:<check>:<quantity> columns hold each check's error (its bound's unit)


def validation_values(trial_dir: str | Path | None) -> dict:
    """A validated trial's numbers for the results table (and the report): each check quantity's error, in the
    unit its bound is in, as `validation:<check>:<quantity>`; the wall time and the checks' summed time apart
    (validation_wall_s, validation_checks_s; MD checks run side by side, so the sum exceeds the wall time);
    validation_estimate_s, what `validate` estimated before it started. Empty when the trial has no
    validation.json (validated before it was kept, or never)."""
    import json

    path = Path(trial_dir) / "validation.json" if trial_dir else None
    if path is None or not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {"validation_wall_s": summary.get("wall_seconds"), "validation_checks_s": summary.get("seconds"),
           "validation_estimate_s": summary.get("estimate_seconds")}
    for r in summary.get("results", []):
        out[f"{VALIDATION_PREFIX}{r['check']}:{r['quantity']}"] = r.get("error")
    return out


def validation_table(trial_dir: str | Path | None) -> list[dict]:
    """A validated trial's checks, one dict per quantity (check, quantity, value, reference, error, unit, bound,
    passed, seconds, detail): what a report shows beside the trial. Empty when never validated."""
    import json

    path = Path(trial_dir) / "validation.json" if trial_dir else None
    if path is None or not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("results", []))
    except (OSError, ValueError):
        return []


def _event_row(row: dict, e: IterationEvent, best, best_feasible, feasible_so_far) -> dict:
    """An iteration that trained nothing: no trial, the run's best so far carried on."""
    row.update({"trial": None, "verdict": "no_experiment", "composite": None, "feasible": False,
                "total_violation": None, "best_so_far": best, "best_so_far_feasible": best_feasible,
                "feasible_so_far": feasible_so_far, "job_failed": False, "job_timeout": False,
                "wall_queue": None, "wall_train": None, "wall_score": None, "wall_total": None,
                "harness_seed": None, "confirm_seed": None, "confirm_composite": None, "margin": None,
                "noise_sigma": None, "harness_hash": None, "scorecard_hash": None, "foundation": None,
                "train_frames": None, "labels_spent": None, "hypothesis": e.text})
    return row


def write_table(rows: list[dict], out_dir: Path) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=COLUMNS)
    front = [c for c in COLUMNS if c in df.columns]
    df = df[front + sorted(c for c in df.columns if c not in front)]
    df.to_csv(out_dir / "results.csv", index=False)
    df.to_parquet(out_dir / "results.parquet", index=False)
    return df


def _final_validated(g: pd.DataFrame) -> float:
    """1.0/0.0: the run's final best passed/failed `mlipilot validate`; NaN: not validated (or no best)."""
    accepted = g[g["verdict"] == "accepted"]
    if "validated" not in g or accepted.empty:  # a results.csv from before validation existed
        return float("nan")
    v = accepted["validated"].iloc[-1]
    return float("nan") if pd.isna(v) else float(bool(v))


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per agent over seeds: iterations to first feasible, best composite (mean ± SEM), tokens, cost,
    wall time, malformed tool calls, failed jobs, the seeds (number, fraction) whose final best is
    feasible, and among seeds whose final best was validated, the fraction that passed."""
    per_run = []
    for (agent, seed), g in df.groupby(["agent", "seed"], sort=True):
        feas = g[g["feasible_so_far"]]
        last = g.iloc[-1]
        per_run.append({"agent": agent, "seed": seed,
                        "first_feasible": float(feas["iteration"].min()) if len(feas) else float("nan"),
                        "final_best": last["best_so_far"], "final_feasible": bool(last["best_so_far_feasible"]),
                        "final_validated": _final_validated(g),
                        "tokens": int(g["tokens_in"].sum() + g["tokens_out"].sum()),
                        "cost": None if g["cost"].isna().any() else float(g["cost"].sum()),
                        "wall_s": float(g["wall_total"].fillna(0).sum() + g["wall_llm"].fillna(0).sum()),
                        "tool_errors": int(g["tool_errors"].sum()), "failed_jobs": int(g["job_failed"].sum()),
                        "iterations": len(g)})
    runs = pd.DataFrame(per_run)
    if runs.empty:
        return runs
    out = runs.groupby("agent").agg(
        seeds=("seed", "count"), iterations=("iterations", "mean"),
        first_feasible_iter=("first_feasible", "mean"), best_composite_mean=("final_best", "mean"),
        best_composite_sem=("final_best", "sem"), feasible_seeds=("final_feasible", "sum"),
        feasible_fraction=("final_feasible", "mean"), validated_seeds=("final_validated", "count"),
        frac_validated=("final_validated", "mean"),  # NaN-skipping: the passed share of the validated seeds
        tokens_mean=("tokens", "mean"), cost_mean=("cost", lambda c: None if c.isna().any() else c.mean()),
        wall_s_mean=("wall_s", "mean"), tool_errors=("tool_errors", "sum"), failed_jobs=("failed_jobs", "sum"))
    return out.reset_index()


def _timed_out(r: TrialRecord) -> bool:
    if r.failure is not None or r.verdict != VerdictKind.FAILED:
        return r.failure == FailureKind.TIMEOUT
    return "timed out" in str(r.reason or "")  # ledgers written before trials recorded a failure kind
