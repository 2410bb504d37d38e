"""What `mlipilot report` reads beside the results table: per trial, why the verdict (the ledger's
reason), what the trial changed (its train/config.yaml options against the commit it was judged
against, other files under train/, the data commits it carried — from git), the foundation model it
fine-tuned from, and the labelling budget of its run. And the tables built from them, with names a
reader who is not the harness's author understands.

Everything here is read-only: the ledger through `Store`, git through GitPython's plumbing; nothing is
written to a run directory or its store."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mlipilot.sanitize import single_line

BASELINE = "1 (baseline)"  # how trial 1, the first scored trial every later one is measured against, is shown


# -- where each run of a table lives --------------------------------------------------------------

def run_locations(path: Path, df: pd.DataFrame) -> dict[str, tuple[Path, Path, object]]:
    """{run name: (run directory, store, RunConfig)} for the runs of `df` that can still be opened:
    `path` itself for a run directory, `path/runs/<name>` for a bench. Runs moved away are left out
    (their panels then show what the table alone holds)."""
    from mlipilot.errors import MLIPilotError
    from mlipilot.run_config import load_run_config

    path = Path(path)
    out: dict[str, tuple[Path, Path, object]] = {}
    if (path / "mlipilot.toml").is_file() and not (path / "results.csv").is_file():
        try:
            cfg = load_run_config(path)
        except MLIPilotError:
            return out
        for name in (df["run"].dropna().unique() if "run" in df else [cfg.name]):
            out[str(name)] = (cfg.root, cfg.store, cfg)
        return out
    for name in (df["run"].dropna().unique() if "run" in df else []):
        root = path / "runs" / str(name)
        try:
            cfg = load_run_config(root)
        except (MLIPilotError, OSError):
            continue
        out[str(name)] = (cfg.root, cfg.store, cfg)
    return out


# -- per trial: why, what changed, data, foundation -------------------------------------------------

def _config_at(repo, commit: str | None) -> dict | None:
    import yaml

    if not commit:
        return None
    try:
        cfg = yaml.safe_load(repo.git.show(f"{commit}:train/config.yaml"))
    except Exception:  # a commit gone (a clone without refs/mlipilot/*) or an unreadable file
        return None
    return cfg if isinstance(cfg, dict) else None


def _short(v) -> str:
    if isinstance(v, float) and v == int(v) and abs(v) < 1e15:
        return f"{v:g}"
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, separators=(",", ":"), default=str)
    return str(v)


def option_diff(before: dict | None, after: dict | None) -> list[str]:
    """'key old → new' per option that differs (added: '+key new', removed: '−key'), sorted by key."""
    if before is None or after is None:
        return []
    out = []
    for k in sorted(set(before) | set(after), key=str):
        if k not in after:
            out.append(f"−{k}")
        elif k not in before:
            out.append(f"+{k} {_short(after[k])}")
        elif before[k] != after[k]:
            out.append(f"{k} {_short(before[k])} → {_short(after[k])}")
    return out


def _files_changed(repo, parent: str | None, commit: str | None) -> list[str]:
    """Files under train/ other than config.yaml that the trial's commit changed."""
    if not parent or not commit:
        return []
    try:
        names = repo.git.diff("--name-only", parent, commit, "--", "train").splitlines()
    except Exception:
        return []
    return [n for n in names if n and n != "train/config.yaml"]


def trial_details(path: Path, df: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, trial) of the runs `run_locations` finds: reason, changed (option diff),
    files (other files under train/), data (the data commits the trial carried), data_commit (their
    short hashes), frames_added, foundation, knobs (the ledger's), label_budget (the run's [data]
    calls when data actions are on)."""
    import git

    from mlipilot.data_commits import carried_data, frames_at
    from mlipilot.store import Store

    rows = []
    for run, (root, store, cfg) in run_locations(path, df).items():
        try:
            repo = git.Repo(root)
        except Exception:
            continue
        ledger = Store(store).ledger
        budget = cfg.data.calls if getattr(cfg, "data", None) is not None and cfg.data.enabled else None
        for r in ledger.latest():
            if not r.decided:
                continue
            try:
                carried = carried_data(root, r.commit) if r.commit else []
            except Exception:
                carried = []
            before, after = _config_at(repo, r.parent_commit), _config_at(repo, r.commit)
            changes = option_diff(before, after)
            frames = [int(d["added"]) for d in carried if str(d.get("added") or "").isdigit()]
            train_frames, spent = r.train_frames, r.labels_spent
            if budget is not None and train_frames is None and r.commit:  # before the run's first data action
                try:
                    train_frames = sum(n for n in frames_at(root, r.commit).values() if n > 0)
                except Exception:
                    train_frames = None
                spent = 0 if spent is None else spent
            rows.append({
                "run": run, "trial": int(r.trial), "reason": single_line(r.reason or "", 400),
                "changed": changes, "files": _files_changed(repo, r.parent_commit, r.commit),
                "data": [single_line(f"{d['action']} +{d.get('added') or 0} −{d.get('removed') or 0} frames"
                                     f" {d.get('file') or ''}") for d in carried],
                "data_commit": ",".join(d["commit"][:8] for d in carried),
                "frames_added": sum(frames) if carried else None,
                "foundation": r.foundation, "knobs": r.knobs, "label_budget": budget,
                "margin": r.margin, "confirm": bool(r.confirm), "frames_git": train_frames, "spent_git": spent})
    return pd.DataFrame(rows, columns=["run", "trial", "reason", "changed", "files", "data", "data_commit",
                                       "frames_added", "foundation", "knobs", "label_budget", "margin", "confirm",
                                       "frames_git", "spent_git"])


def with_details(df: pd.DataFrame, details: pd.DataFrame) -> pd.DataFrame:
    """`df` with the details' columns joined on (run, trial) (absent: the columns, empty)."""
    cols = ["reason", "changed", "files", "data", "data_commit", "frames_added", "label_budget", "frames_git",
            "spent_git"]
    if "foundation" not in df:
        cols.append("foundation")
    if details.empty or "run" not in df or "trial" not in df:
        return df.assign(**{c: None for c in cols if c not in df})
    d = details[["run", "trial", *cols]].copy()
    d["trial"] = d["trial"].astype(float)
    out = df.assign(trial=df["trial"].astype(float)).merge(d, on=["run", "trial"], how="left")
    if "foundation_x" in out:  # never: foundation only joined when df lacks it
        out = out.rename(columns={"foundation_x": "foundation"}).drop(columns="foundation_y")
    out.index = df.index
    return out


# -- classifications the figures and tables share --------------------------------------------------

def within_margin(df: pd.DataFrame) -> pd.Series:
    """Rejected trials whose composite is below the best so far — better, but not by the noise margin
    (or a close call a second seed did not confirm): what would otherwise read as a wrong verdict."""
    if not {"verdict", "composite", "best_so_far", "feasible"} <= set(df.columns):
        return pd.Series(False, index=df.index)
    best_feasible = df["best_so_far_feasible"].fillna(False).astype(bool) if "best_so_far_feasible" in df \
        else pd.Series(True, index=df.index)
    return ((df["verdict"] == "rejected") & df["feasible"].fillna(False).astype(bool) & best_feasible
            & (pd.to_numeric(df["composite"], errors="coerce") < pd.to_numeric(df["best_so_far"], errors="coerce")))


def fine_tuned(df: pd.DataFrame) -> pd.Series:
    if "foundation" not in df:
        return pd.Series(False, index=df.index)
    return df["foundation"].notna() & (df["foundation"].astype(str).str.strip() != "")


def run_label(agent: str, seed) -> str:
    """'expert, seed 0': a run as a reader names it."""
    try:
        return f"{agent}, seed {int(seed)}"
    except (TypeError, ValueError):
        return str(agent)


def trial_label(trial) -> str:
    return BASELINE if int(trial) == 1 else str(int(trial))


# -- number formatting ----------------------------------------------------------------------------

def mean_sem(mean: float, sem: float | None) -> str:
    """'1.6950 ± 0.0002': the mean to the SEM's precision (two significant digits of the SEM); without
    a SEM (one run), five significant digits."""
    if mean is None or not math.isfinite(mean):
        return "–"
    if sem is None or not math.isfinite(sem):
        return composite_text(mean)  # one run: no spread to show
    if sem <= 0:
        return f"{composite_text(mean)} ± 0"
    digits = max(0, 1 - int(math.floor(math.log10(sem))))
    return f"{mean:.{digits}f} ± {sem:.{digits}f}"


def composite_text(v) -> str:
    """Composites to five significant digits: near-equal trials (1.6948 vs 1.6953) stay apart."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(v) else f"{v:#.5g}".rstrip(".")


# -- the tables ------------------------------------------------------------------------------------

def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per agent over its runs, in words: runs, best composite (mean ± SEM), feasible runs, validated
    (final best passed `mlipilot validate` / validated), first feasible trial (mean), trials per run,
    failed trials; tokens, cost and malformed tool calls only where some were spent."""
    from mlipilot.results import summary

    summ = summary(df)
    if summ.empty:
        return summ
    t = df[df["trial"].notna()] if "trial" in df else df
    first = {}
    for (agent, seed), g in t.groupby(["agent", "seed"]):
        feas = g[g["feasible_so_far"].fillna(False).astype(bool)] if "feasible_so_far" in g else g.iloc[:0]
        first.setdefault(agent, []).append(float(feas["trial"].min()) if len(feas) else float("nan"))
    trials = t.groupby(["agent", "seed"]).size().groupby(level=0).mean() if len(t) else pd.Series(dtype=float)
    rows = []
    for _, s in summ.iterrows():
        a = s["agent"]
        ff = [x for x in first.get(a, []) if x == x]
        row = {"agent": a, "runs": int(s["seeds"]),
               "best composite (mean ± SEM)": mean_sem(s["best_composite_mean"], s["best_composite_sem"]),
               "feasible": f"{int(s['feasible_seeds'])} of {int(s['seeds'])}",
               "validated": (f"{round(s['frac_validated'] * s['validated_seeds'])} of {int(s['validated_seeds'])} passed"
                             if s.get("validated_seeds", 0) else "not validated"),
               "first feasible trial": (f"{sum(ff) / len(ff):.1f}" + (f" ({len(ff)} of {int(s['seeds'])} runs)"
                                                                     if len(ff) < s["seeds"] else "")) if ff else "never",
               "trials per run": f"{trials.get(a, float('nan')):.1f}",
               "failed trials": int(s["failed_jobs"])}
        if summ["tokens_mean"].fillna(0).sum() > 0:
            row["tokens per run"] = f"{s['tokens_mean']:,.0f}"
        if summ["cost_mean"].fillna(0).sum() > 0:
            row["cost per run"] = "–" if pd.isna(s["cost_mean"]) else f"${s['cost_mean']:.2f}"
        if summ["tool_errors"].fillna(0).sum() > 0:
            row["malformed tool calls"] = int(s["tool_errors"])
        row["time per run"] = _duration(s["wall_s_mean"])
        rows.append(row)
    return pd.DataFrame(rows)


def _duration(seconds) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s):
        return "–"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def why(row) -> str:
    """The verdict's reason, shortened; a within-margin rejection says so first."""
    reason = single_line(row.get("reason") or "", 180) if isinstance(row.get("reason"), str) else ""
    if row.get("_within_margin"):
        return f"better than the best, but within the noise margin: {reason}" if reason else \
            "better than the best, but within the noise margin"
    return reason


def changes_text(row) -> str:
    parts = []
    for key, prefix in (("changed", ""), ("files", "edited ")):
        v = row.get(key)
        if isinstance(v, list) and v:
            parts.append("; ".join(prefix + single_line(x, 120) for x in v))
    data = row.get("data")
    if isinstance(data, list) and data:
        parts.append("data: " + "; ".join(data) + (f" (commit {row['data_commit']})" if row.get("data_commit") else ""))
    if not parts:
        return "the shipped configuration" if row.get("trial") == 1 else "no option changed"
    return " · ".join(parts)


def changes_table(g: pd.DataFrame, single: bool) -> pd.DataFrame:
    """One run's trials: what each changed and the verdict; a bench's (which has no trials table) also
    the composite, why and the hypothesis."""
    g = g[g["trial"].notna()].sort_values("trial")
    rows = []
    for _, r in g.iterrows():
        r = r.to_dict()
        row = {"trial": trial_label(r["trial"])}
        if single:
            row["agent"] = r.get("trial_agent") or ""
        row["verdict"] = r.get("verdict")
        if not single:
            row["composite"] = composite_text(r.get("composite"))
        row["what changed"] = changes_text(r)
        if not single:
            row["why"] = why(r)
        if fine_tuned(g).any():
            row["fine-tuned from"] = r.get("foundation") or ""
        if not single:
            row["hypothesis"] = single_line(r.get("hypothesis") or "", 140) if isinstance(r.get("hypothesis"), str) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def data_table(g: pd.DataFrame) -> pd.DataFrame:
    """One run's trials once data actions added frames: training frames, what the trial's data commits
    added, labels spent before it, the budget left, the data commits."""
    g = g[g["trial"].notna()].sort_values("trial")
    rows = []
    for _, r in g.iterrows():
        budget = r.get("label_budget")
        spent = r.get("labels_spent") if pd.notna(r.get("labels_spent")) else r.get("spent_git")
        frames = r.get("train_frames") if pd.notna(r.get("train_frames")) else r.get("frames_git")
        rows.append({
            "trial": trial_label(r["trial"]), "verdict": r.get("verdict"),
            "training frames": "–" if frames is None or pd.isna(frames) else f"{int(frames)}",
            "frames added": "–" if pd.isna(r.get("frames_added")) else f"+{int(r['frames_added'])}",
            "labels spent": "–" if pd.isna(spent) else f"{int(spent)}",
            "budget left": ("–" if pd.isna(spent) or budget is None or pd.isna(budget)
                            else f"{int(budget) - int(spent)} of {int(budget)}"),
            "data commit": r.get("data_commit") or ""})
    return pd.DataFrame(rows)


def validation_summary(df: pd.DataFrame, single: bool) -> pd.DataFrame:
    """Per agent: the models the scorecard accepted as feasible, those validated, those that passed,
    and the checks that failed (named, with how many models failed each)."""
    from collections import Counter

    t = df[df["trial"].notna()]
    who = (t["trial_agent"].fillna("?") if single and "trial_agent" in t else t["agent"]).astype(str)
    rows = []
    for a in sorted(who.unique()):
        g = t[who == a]
        validated = g[g["validated"].notna()]
        failed = Counter(c for v in validated["validation_failed"].dropna() for c in str(v).split(",") if c)
        rows.append({"agent": a,
                     "accepted and feasible": int(((g["verdict"] == "accepted") & g["feasible"].astype(bool)).sum()),
                     "validated": len(validated), "passed": int(validated["validated"].astype(bool).sum()),
                     "checks failed (models)": ", ".join(f"{c} ({n})" for c, n in sorted(
                         failed.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"})
    return pd.DataFrame(rows)
