"""`mlipilot report PATH`: figures (PNG + SVG) and a self-contained report.html for a bench
directory (results.csv) or a single run directory (its ledger). A run's report goes to its private
store: a file added to the run's work tree would make the next trial refuse (integrity).

One numbering throughout: trials, per run, from 1 — trial 1 is the run's baseline (the harness's
iteration 0), shown as "1 (baseline)"; iterations that trained nothing are counted, not drawn. Panels
appear only when their data exist: validation (`mlipilot validate` ran), data (data actions added
frames), fine-tuning (a trial started from a foundation model); what each trial changed is read from
git and the ledger (mlipilot.report_panels)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from mlipilot.errors import MLIPilotError
from mlipilot.report_panels import (
    changes_table,
    data_table,
    fine_tuned,
    run_label,
    summary_table,
    trial_details,
    trial_label,
    validation_summary,
    why,
    with_details,
    within_margin,
)
from mlipilot.results import run_rows

VERDICT_COLOURS = {"accepted": "#2e7d32", "rejected": "#c62828", "failed": "#424242", "no_experiment": "#bdbdbd"}
MARGIN_COLOUR = "#ef6c00"  # a rejected trial better than the best, but inside the noise margin
LOG_RATIO = 10.0  # a y axis is logarithmic only when its values span at least this factor

CAPTIONS = {
    "composite_vs_iteration": "Composite score per trial (lower is better). Filled: feasible; hollow: infeasible. "
                              "Line: the best so far. Shaded box under the line: the noise margin the trial had "
                              "to beat (max of the scorecard's relative margin and z × the measured seed sigma); "
                              "a trial inside it is not counted as better and is rejected (orange ring). "
                              "Band around the line: best ± the seed noise the harness measured. Red span: the "
                              "best was still infeasible.",
    "verdict_grid": "The verdict of every trial (F: fine-tuned from a foundation model; ≈: better than the best "
                    "but within the noise margin, so rejected).",
    "ranking": "Final best composite per agent (mean ± SEM over its runs) and the share of runs whose final best "
               "is feasible.",
    "tokens_vs_score": "LLM tokens spent per run against its final best composite.",
    "errors_per_group": "Holdout energy and force RMSE per config_type, per trial (a bench: mean over runs).",
    "md_outcomes": "Each MD stability run of each trial, with the steps it reached.",
    "validation": "Per agent: models the scorecard accepted as feasible, those `mlipilot validate` checked and those "
                  "that passed; and which validation checks failed.",
    "data_growth": "Composite against training frames and against reference labels spent.",
    "data_per_trial": "Training frames and reference labels spent per trial (dashed: the run's label budget).",
}


def load_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if (path / "results.csv").is_file():
        return pd.read_csv(path / "results.csv")
    if (path / "mlipilot.toml").is_file():
        from mlipilot.run_config import load_run_config

        cfg = load_run_config(path)
        rows = run_rows(cfg.store, "", 0, cfg.name)
        # one series for the run; who ran each trial stays in trial_agent (a human, then an agent, ...)
        label = "+".join(dict.fromkeys(str(r["trial_agent"]) for r in rows if r["trial_agent"])) or "agent"
        return pd.DataFrame(rows).assign(agent=label)
    raise MLIPilotError(f"{path}: neither a bench directory (results.csv) nor a run directory (mlipilot.toml)")


def output_dir(path: Path, out: Path | None) -> Path:
    """--out, else <bench>/report or <store>/report for a run. Never inside a run directory: the
    next trial would find a file added outside the editable paths and refuse."""
    if out is None:
        if (path / "results.csv").is_file() or not (path / "mlipilot.toml").is_file():
            return path / "report"
        from mlipilot.run_config import load_run_config

        return load_run_config(path).store / "report"
    out = Path(out).resolve()
    for p in (out, *out.parents):
        if (p / "mlipilot.toml").is_file():
            raise MLIPilotError(f"--out {out}: inside the run directory {p}, where the next trial would refuse the "
                                "added files (integrity) — pass a folder outside it, or omit --out (a run's report "
                                "goes to its private store)")
    return out


def _save(fig, out: Path, name: str) -> Path:
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    return png


def _trials(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that are trials (an iteration that trained nothing has no trial number)."""
    return df[df["trial"].notna()].assign(trial=lambda d: d["trial"].astype(int)) if "trial" in df else df.iloc[:0]


def _trial_axis(ax, n_max: int) -> None:
    """Integer trial ticks, trial 1 marked as the baseline."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: "" if v != int(v) or not 1 <= v <= max(n_max, 1) else ("1\nbaseline" if v == 1 else f"{int(v)}")))
    ax.set_xlim(0.5, max(n_max, 1) + 0.5)
    ax.set_xlabel("trial")


def _y_scale(ax, values) -> None:
    """Logarithmic only when the values span LOG_RATIO or more; otherwise linear with plain tick
    labels (no 1.6953 × 10⁰, no offset)."""
    v = pd.to_numeric(pd.Series(list(values)), errors="coerce")
    v = v[v.notna() & (v.abs() != float("inf"))]
    if len(v) and v.min() > 0 and v.max() / v.min() >= LOG_RATIO:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        # plain numbers (1, 2, 5, 10), not 10⁰; the 2s and 5s between decades labelled too
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(
            lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "25" and v.max() / v.min() < 1e3 else ""))
    else:
        ax.set_yscale("linear")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def make_figures(df: pd.DataFrame, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    df = df.copy()
    if "_within_margin" not in df:
        df["_within_margin"] = within_margin(df)
    agents = sorted(df["agent"].unique())
    colours = {a: plt.cm.tab10(i % 10) for i, a in enumerate(agents)}
    single = df.groupby(["agent", "seed"]).ngroups == 1
    t = _trials(df)
    n_trials = int(t["trial"].max()) if len(t) else 1
    figs = {}
    figs["composite_vs_iteration"] = _composite(plt, t, agents, colours, n_trials, out)
    figs["verdict_grid"] = _verdict_grid(plt, t, single, n_trials, out)

    from mlipilot.results import summary

    summ = summary(df)
    # final score ranking, mean ± SEM over seeds, with the fraction of seeds reaching feasibility
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(summ) + 1.5))
    ranked = summ.sort_values("best_composite_mean")
    ax.barh(ranked["agent"], ranked["best_composite_mean"], xerr=ranked["best_composite_sem"].fillna(0),
            color=[colours[a] for a in ranked["agent"]])
    for y, (_, r) in enumerate(ranked.iterrows()):
        ax.text(r["best_composite_mean"], y, f"  feasible {r['feasible_fraction']:.0%}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.set(xlabel="final best composite (mean ± SEM over runs; lower is better)", title="Ranking")
    figs["ranking"] = _save(fig, out, "ranking")
    plt.close(fig)

    # tokens vs final score: only when some were spent (the scripted baselines and humans spend none)
    if (df["tokens_in"].fillna(0) + df["tokens_out"].fillna(0)).sum() > 0:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (agent, seed), g in df.groupby(["agent", "seed"]):
            ax.scatter(g["tokens_in"].sum() + g["tokens_out"].sum(), g["best_so_far"].iloc[-1],
                       color=colours[agent], label=agent if seed == df[df.agent == agent]["seed"].min() else None)
        ax.set(xlabel="tokens spent (in + out)", ylabel="final best composite", title="Tokens vs final score")
        ax.set_xscale("symlog")
        _y_scale(ax, df.groupby(["agent", "seed"])["best_so_far"].last())
        ax.legend(fontsize=8)
        figs["tokens_vs_score"] = _save(fig, out, "tokens_vs_score")
        plt.close(fig)

    if groups := _groups(df):
        figs["errors_per_group"] = _errors_per_group(plt, t, groups, agents, n_trials, out)
    if md_names := sorted(c.removeprefix("md_ok_") for c in df.columns if c.startswith("md_ok_")):
        figs["md_outcomes"] = _md_outcomes(plt, t, md_names, single, n_trials, out)
    if "validated" in df and df["validated"].notna().any():
        figs["validation"] = _validation(plt, df, single, out)
    if "labels_spent" in df and df["labels_spent"].notna().any():  # data actions: what the added data bought
        from mlipilot.data_growth import plot_growth

        figs["data_growth"] = plot_growth({f"{agent} seed {seed}": g.to_dict("records")
                                           for (agent, seed), g in df.groupby(["agent", "seed"])
                                           if g["labels_spent"].notna().any()}, out)  # runs that added data
        figs["data_per_trial"] = _data_per_trial(plt, t, colours, n_trials, out)
    return figs


def _composite(plt, t: pd.DataFrame, agents, colours, n_trials: int, out: Path) -> Path:
    """Each trial a point (hollow: infeasible), the best so far a step line, the noise margin each
    trial had to beat a box under it, within-margin rejections ringed, fine-tuned trials starred."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    shown: list[float] = []
    margin_drawn = False
    annotated = False
    for (agent, seed), g in t.groupby(["agent", "seed"]):
        g = g.sort_values("trial")
        c = colours[agent]
        ax.step(g["trial"], g["best_so_far"], where="post", color=c, alpha=0.8,
                label=agent if seed == t[t.agent == agent]["seed"].min() else None)
        shown += list(g["best_so_far"].dropna())
        if "noise_sigma" in g and g["noise_sigma"].notna().any():  # the incumbent's measured seed noise
            sigma = g["noise_sigma"].ffill().fillna(0.0)
            ax.fill_between(g["trial"], g["best_so_far"] - sigma, g["best_so_far"] + sigma, step="post",
                            color=c, alpha=0.15, lw=0)
        if "margin" in g and g["margin"].notna().any():  # what the trial had to beat the best before it by
            before = pd.to_numeric(g["best_so_far"], errors="coerce").shift(1)
            before_feasible = g["best_so_far_feasible"].shift(1).fillna(False).astype(bool) \
                if "best_so_far_feasible" in g else pd.Series(True, index=g.index)
            m = pd.to_numeric(g["margin"], errors="coerce")
            ok = before.notna() & m.notna() & before_feasible & (m > 0)
            if ok.any():
                ax.bar(g["trial"][ok], m[ok], bottom=(before - m)[ok], width=0.9, color=c, alpha=0.13, lw=0,
                       zorder=1)
                shown += list((before - m)[ok])
                margin_drawn = True
        pts = g.dropna(subset=["composite"])
        feas = pts["feasible"].fillna(False).astype(bool)
        shown += list(pts["composite"])
        ax.scatter(pts["trial"][feas], pts["composite"][feas], color=c, s=22, zorder=3)
        ax.scatter(pts["trial"][~feas], pts["composite"][~feas], facecolors="none", edgecolors=c, s=22, zorder=3)
        inside = pts[pts["_within_margin"].fillna(False).astype(bool)] if "_within_margin" in pts else pts.iloc[:0]
        if len(inside):
            ax.scatter(inside["trial"], inside["composite"], facecolors="none", edgecolors=MARGIN_COLOUR, s=90,
                       linewidths=1.6, zorder=4)
            if not annotated:
                r = inside.iloc[0]
                ax.annotate("better, but within\nthe noise margin:\nrejected", (r["trial"], r["composite"]),
                            xytext=(12, -28), textcoords="offset points", fontsize=7, color=MARGIN_COLOUR,
                            arrowprops={"arrowstyle": "-", "color": MARGIN_COLOUR, "lw": 0.8})
                annotated = True
        tuned = pts[fine_tuned(pts)]
        if len(tuned):
            ax.scatter(tuned["trial"], tuned["composite"], marker="*", s=110, facecolors="none",
                       edgecolors="black", linewidths=0.9, zorder=5)
        if "best_so_far_feasible" in g:
            infeasible = g[~g["best_so_far_feasible"].fillna(False).astype(bool)]
            if len(infeasible):
                ax.axvspan(infeasible["trial"].min() - 0.5, infeasible["trial"].max() + 0.5,
                           color="#ffcdd2", alpha=0.15, lw=0)
    _y_scale(ax, shown)
    _trial_axis(ax, n_trials)
    ax.set(ylabel="composite score (lower is better)", title="Composite vs trial")
    handles, labels = ax.get_legend_handles_labels()
    extra = [(Line2D([], [], ls="", marker="o", mfc="none", mec="grey"), "infeasible trial")]
    if margin_drawn:
        extra.append((Patch(color="grey", alpha=0.3), "noise margin to beat"))
    if len(t) and t["_within_margin"].fillna(False).astype(bool).any():
        extra.append((Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec=MARGIN_COLOUR, mew=1.6),
                      "rejected: within the margin"))
    if len(t) and fine_tuned(t).any():
        extra.append((Line2D([], [], ls="", marker="*", ms=10, mfc="none", mec="black"), "fine-tuned"))
    ax.legend(handles + [h for h, _ in extra], labels + [lbl for _, lbl in extra], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    path = _save(fig, out, "composite_vs_iteration")
    plt.close(fig)
    return path


def _verdict_grid(plt, t: pd.DataFrame, single: bool, n_trials: int, out: Path) -> Path:
    """A cell per trial; a single run gets one row per agent that ran trials in it."""
    from matplotlib.patches import Patch

    who = t["trial_agent"].fillna("?").astype(str) if single and "trial_agent" in t else None
    rows = sorted(who.unique()) if who is not None else sorted(t.groupby(["agent", "seed"]).groups)
    rows = rows or ["–"]
    tuned = fine_tuned(t)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * n_trials + 3.5), 0.35 * len(rows) + 1.5))
    for i, r in t.iterrows():
        y = rows.index(who[i] if who is not None else (r["agent"], r["seed"]))
        ax.add_patch(plt.Rectangle((r["trial"] - 0.45, y - 0.4), 0.9, 0.8,
                                   color=VERDICT_COLOURS.get(r["verdict"], "#90a4ae")))
        mark = "F" if tuned[i] else ("≈" if r.get("_within_margin") in (True, 1) else "")
        if mark:
            ax.text(r["trial"], y, mark, ha="center", va="center", fontsize=8, color="white", weight="bold")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)), rows if who is not None else [run_label(a, s) for a, s in rows], fontsize=8)
    ax.invert_yaxis()
    _trial_axis(ax, n_trials)
    ax.legend(handles=[Patch(color=VERDICT_COLOURS[v], label=v) for v in ("accepted", "rejected", "failed")],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title("Verdict per trial")
    path = _save(fig, out, "verdict_grid")
    plt.close(fig)
    return path


def _groups(df: pd.DataFrame) -> list[str]:
    """The holdout's config_types, from the energy_rmse_<group> metrics (force_rmse_<X> may be a
    per-element error instead, so energy names the groups; glob groups a scorecard names repeat them)."""
    return sorted(c.removeprefix("metric_energy_rmse_") for c in df.columns
                  if c.startswith("metric_energy_rmse_") and c != "metric_energy_rmse_max_group"
                  and not any(ch in c for ch in "*?[") and df[c].notna().any())


def _errors_per_group(plt, t: pd.DataFrame, groups: list[str], agents: list[str], n_trials: int, out: Path) -> Path:
    """Energy and force RMSE per config_type vs trial (a bench: mean over seeds, a column per agent):
    which kind of structure the model gets wrong, where the overall RMSE hides it."""
    fig, axes = plt.subplots(2, len(agents), figsize=(max(6.5, 4.5 * len(agents)), 6), squeeze=False,
                             sharex=True)
    for col, agent in enumerate(agents):
        g = t[t.agent == agent]
        for row, (qty, unit) in enumerate([("energy_rmse", "meV/atom"), ("force_rmse", "meV/Å")]):
            ax = axes[row][col]
            values = []
            for i, group in enumerate(groups):
                c = f"metric_{qty}_{group}"
                if c in g:
                    series = g.groupby("trial")[c].mean()
                    values += list(series.dropna())
                    ax.plot(series.index, series.values, marker="o", ms=4, color=plt.cm.tab10(i % 10), label=group)
            _y_scale(ax, values)
            ax.set(ylabel=f"{qty} ({unit})" if col == 0 else None,
                   title=agent if row == 0 and len(agents) > 1 else None)
            ax.grid(alpha=0.3, which="both")
            _trial_axis(ax, n_trials)
            if row == 0:
                ax.set_xlabel(None)
    axes[0][-1].legend(fontsize=8, title="config_type", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Holdout errors per config_type (a gap: no model scored)")
    path = _save(fig, out, "errors_per_group")
    plt.close(fig)
    return path


def _md_outcomes(plt, t: pd.DataFrame, md_names: list[str], single: bool, n_trials: int, out: Path) -> Path:
    """Each MD stability run of each trial: green ran to the end, red failed (steps reached written
    in the cell), grey not run (no model)."""
    keys = [(a, s, n) for (a, s), _ in t.groupby(["agent", "seed"]) for n in md_names]
    fig, ax = plt.subplots(figsize=(max(5.5, 0.5 * n_trials + 3.5), 0.35 * len(keys) + 1.4))
    for y, (agent, seed, name) in enumerate(keys):
        g = t[(t.agent == agent) & (t.seed == seed)]
        for _, r in g.iterrows():
            ok, steps = r.get(f"md_ok_{name}"), r.get(f"md_steps_{name}")
            colour = "#cfd8dc" if pd.isna(ok) else ("#2e7d32" if ok else "#c62828")
            ax.add_patch(plt.Rectangle((r["trial"] - 0.45, y - 0.4), 0.9, 0.8, color=colour))
            if not pd.isna(steps):
                ax.text(r["trial"], y, f"{int(steps)}", ha="center", va="center", fontsize=6, color="white")
    ax.set_ylim(-0.6, len(keys) - 0.4)
    ax.set_yticks(range(len(keys)), [n if single else f"{run_label(a, s)}: {n}" for a, s, n in keys], fontsize=8)
    ax.invert_yaxis()
    _trial_axis(ax, n_trials)
    ax.set_title("MD runs (steps reached): green = ran to the end, red = failed, grey = not run")
    path = _save(fig, out, "md_outcomes")
    plt.close(fig)
    return path


def _validation(plt, df: pd.DataFrame, single: bool, out: Path) -> Path:
    """Per agent (a single run: per agent that ran trials), the models the scorecard accepted as feasible
    beside those `mlipilot validate` checked and passed; and which validation checks failed how often
    (what the scorecard let through)."""
    from collections import Counter

    from matplotlib.ticker import MaxNLocator

    t = df[df["trial"].notna()]
    who = (t["trial_agent"].fillna("?") if single else t["agent"]).astype(str)
    agents = sorted(who.unique())
    validated = t["validated"].notna()
    bars = {"accepted & feasible": ((t["verdict"] == "accepted") & t["feasible"].astype(bool), "#90a4ae"),
            "validated": (validated, "#1565c0"),
            "passed validation": (validated & t["validated"].eq(True), "#2e7d32")}
    failed = Counter(c for v in t["validation_failed"].dropna() for c in str(v).split(",") if c)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.3 * max(len(agents), len(failed)) + 3.5),
                                      layout="constrained")
    width = 0.8 / len(bars)
    for i, (label, (mask, colour)) in enumerate(bars.items()):
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(agents))]
        counts = [int(mask[who == a].sum()) for a in agents]
        left.bar_label(left.bar(xs, counts, width, color=colour, label=label), fontsize=8)
    left.set_xticks(range(len(agents)), agents, rotation=20 if len(agents) > 3 else 0, fontsize=8)
    left.set_xlim(-0.7, len(agents) - 0.3)
    left.set_ylim(0, left.get_ylim()[1] * 1.3)  # headroom for the legend
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set(ylabel="models", title="Scorecard vs validation")
    left.legend(fontsize=8, loc="upper left", ncols=3)
    if failed:
        names = sorted(failed, key=lambda c: (-failed[c], c))
        right.barh(names, [failed[c] for c in names], color="#c62828")
        right.invert_yaxis()
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        right.text(0.5, 0.5, "no check failed", ha="center", va="center", transform=right.transAxes)
        right.set(xticks=[], yticks=[])
    right.set(xlabel="validated models failing it", title="Failed validation checks")
    path = _save(fig, out, "validation")
    plt.close(fig)
    return path


def _data_per_trial(plt, t: pd.DataFrame, colours: dict, n_trials: int, out: Path) -> Path:
    """Training frames and reference labels spent per trial, a line per run (the run's label budget
    dashed): where each agent spent its labels."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for (agent, seed), g in t.groupby(["agent", "seed"]):
        g = g.sort_values("trial")
        c = colours[agent]
        label = run_label(agent, seed)
        frames = pd.to_numeric(g["train_frames"], errors="coerce")
        spent = pd.to_numeric(g["labels_spent"], errors="coerce")
        if frames.notna().any():
            left.plot(g["trial"][frames.notna()], frames.dropna(), marker="o", ms=4, color=c, label=label)
        if spent.notna().any():
            right.plot(g["trial"][spent.notna()], spent.dropna(), marker="o", ms=4, color=c, label=label)
            budget = pd.to_numeric(g.get("label_budget", pd.Series(dtype=float)), errors="coerce").dropna()
            if len(budget):
                right.axhline(float(budget.iloc[0]), color=c, ls="--", lw=0.8, alpha=0.7)
    for ax, ylabel in ((left, "training frames"), (right, "reference labels spent before the trial")):
        _trial_axis(ax, n_trials)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    right.set_ylim(bottom=0)
    left.legend(fontsize=7)
    fig.suptitle("Data per trial (dashed: the run's label budget)")
    path = _save(fig, out, "data_per_trial")
    plt.close(fig)
    return path


def validation_table(df: pd.DataFrame, single: bool) -> pd.DataFrame:
    """The validated trials: the scorecard's verdict beside `mlipilot validate`'s."""
    t = df[df["validated"].notna()] if "validated" in df else df.iloc[:0]
    t = t.assign(agent=t["trial_agent"] if single else t["agent"], trial=t["trial"].map(trial_label),
                 validation=t["validated"].map(lambda v: "pass" if bool(v) else "FAIL"),
                 feasible=t["feasible"].map(lambda v: "yes" if bool(v) else "no"),
                 failed=t["validation_failed"].map(lambda v: "" if pd.isna(v) else str(v).replace(",", ", ")))
    cols = ([] if single else ["run"]) + ["trial", "agent", "verdict", "feasible", "validation", "failed"]
    return t[cols].rename(columns={"failed": "failed checks"})


def trial_table(df: pd.DataFrame) -> pd.DataFrame:
    """A single run's trials, each with the agent that ran it (a run can change hands) and why its
    verdict."""
    t = df[df["trial"].notna()] if "trial" in df else df.iloc[:0]
    rows = []
    tuned = fine_tuned(t).any()
    for _, r in t.sort_values("trial").iterrows():
        r = r.to_dict()
        row = {"trial": trial_label(r["trial"]), "agent": r.get("trial_agent") or "", "verdict": r.get("verdict"),
               "why": why(r), "composite": _composite_text(r.get("composite")),
               "feasible": "yes" if r.get("feasible") is True or r.get("feasible") == 1 else "no"}
        if "metric_md_failed_runs" in t:
            v = r.get("metric_md_failed_runs")
            row["MD runs failed"] = "–" if v is None or pd.isna(v) else f"{int(v)}"
        if tuned:
            row["fine-tuned from"] = r.get("foundation") or ""
        row["hypothesis"] = (r.get("hypothesis") or "")[:100] if isinstance(r.get("hypothesis"), str) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _composite_text(v) -> str:
    from mlipilot.report_panels import composite_text

    return composite_text(v)


_TABLES = iter(range(1, 1 << 30))
SHORT_CELL = 24  # characters: a column whose cells are all this short never breaks inside a word


def _table(frame: pd.DataFrame) -> str:
    """The table as HTML that fits its column: long text wraps anywhere it must, short cells (trial,
    verdict, numbers) never break inside a word."""
    html_ = frame.to_html(na_rep="–", border=0, index=False, justify="left", classes=f"t{(n := next(_TABLES))}")
    short = [i + 1 for i, c in enumerate(frame.columns)
             if max((len(str(v)) for v in frame[c]), default=0) <= SHORT_CELL]
    if not short:
        return html_
    cells = ",".join(f".t{n} td:nth-child({i})" for i in short)
    return f"<style>{cells}{{white-space:nowrap;overflow-wrap:normal}}</style>{html_}"


def _figure(name: str, p: Path) -> str:
    caption = html.escape(CAPTIONS.get(name, name.replace("_", " ")))
    return (f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
            f"<figcaption>{caption}</figcaption></figure>")


def write_report(path: Path, out: Path | None = None) -> Path:
    path = Path(path)
    df = load_table(path)
    if df.empty:
        raise MLIPilotError(f"{path}: no trials recorded yet — nothing to report")
    out = output_dir(path, out)
    try:
        details = trial_details(path, df)
    except Exception as e:  # a run moved or its git unreadable: the report still shows what the table holds
        details = pd.DataFrame()
        print(f"report: what each trial changed is not shown ({type(e).__name__}: {e})")
    df = with_details(df, details)
    df["_within_margin"] = within_margin(df)
    figs = make_figures(df, out)
    single = df.groupby(["agent", "seed"]).ngroups == 1
    n_runs = df.groupby(["agent", "seed"]).ngroups
    fig = lambda *names: "".join(_figure(n, figs[n]) for n in names if n in figs)  # noqa: E731
    sections = [f"<h2>Summary</h2><div class=\"wrap\">{_table(summary_table(df))}</div>"]
    sections.append("<h2>Progress</h2>" + fig("composite_vs_iteration", "verdict_grid", "ranking", "tokens_vs_score"))
    t = _trials(df)
    if single:
        sections.append(f"<h2>Trials</h2><div class=\"wrap\">{_table(trial_table(df))}</div>")
    # what each trial changed: options (git), data commits, the foundation model; per run in a bench
    changed = []
    for (agent, seed), g in t.groupby(["agent", "seed"]):
        table = _table(changes_table(g, single))
        changed.append(table if single else f"<h3>{html.escape(run_label(agent, seed))}</h3>{table}")
    if changed:
        sections.append("<h2>What each trial changed</h2><p>Options of <code>train/config.yaml</code> against the "
                        "commit the trial was judged against, other files it edited under <code>train/</code>, "
                        "and the data commits it trained with (from git and the ledger).</p>"
                        f"<div class=\"wrap\">{''.join(changed)}</div>")
    if len(tuned := t[fine_tuned(t)]):
        names = sorted(tuned["foundation"].astype(str).unique())
        sections.append("<h2>Fine-tuning</h2><p>" + f"{len(tuned)} trial{'s' * (len(tuned) != 1)} started from a "
                        f"foundation model ({html.escape(', '.join(names))}): starred in the composite figure, F in "
                        "the verdict grid.</p><div class=\"wrap\">" + _table(pd.DataFrame(
                            {**({} if single else {"run": [run_label(a, s) for a, s in zip(tuned["agent"], tuned["seed"])]}),
                             "trial": tuned["trial"].map(trial_label).values, "verdict": tuned["verdict"].values,
                             "composite": tuned["composite"].map(_composite_text).values,
                             "fine-tuned from": tuned["foundation"].values})) + "</div>")
    if "labels_spent" in t and t["labels_spent"].notna().any():
        tables = []
        for (agent, seed), g in t.groupby(["agent", "seed"]):
            if g["labels_spent"].notna().any() or g["train_frames"].notna().any():
                table = _table(data_table(g))
                tables.append(table if single else f"<h3>{html.escape(run_label(agent, seed))}</h3>{table}")
        sections.append("<h2>Data</h2><p>Per trial: the frames it trained on, the frames its data commits added, "
                        "the reference labels spent before it started and the budget left.</p>"
                        + fig("data_per_trial", "data_growth") + f"<div class=\"wrap\">{''.join(tables)}</div>")
    if "validated" in df and df["validated"].notna().any():
        validated = validation_table(df, single)
        sections.append("<h2>Validation</h2><p>The scorecard's verdict beside <code>mlipilot validate</code>'s "
                        "(longer MD, properties never trained on).</p>" + fig("validation")
                        + f"<div class=\"wrap\">{_table(validation_summary(df, single))}</div>"
                        + f"<h3>Validated trials</h3><div class=\"wrap\">{_table(validated)}</div>")
    if "errors_per_group" in figs or "md_outcomes" in figs:
        sections.append("<h2>Holdout errors and MD</h2>" + fig("errors_per_group", "md_outcomes"))
    skipped = int(df["trial"].isna().sum()) if "trial" in df else 0
    name = html.escape(path.resolve().name)
    intro = (f"<p>{len(df)} iterations over {n_runs} runs. Lower composite is better. Every figure and table numbers "
             "trials, per run from 1: trial 1 is the run's baseline (the harness's iteration 0)"
             + (f"; {skipped} iteration{'s' * (skipped != 1)} trained nothing (a refusal or the agent's finish) and "
                "appear in no figure" if skipped else "") + ".</p>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>MLIPilot report: {name}</title>
<style>body{{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1.5em;line-height:1.35}}
img{{max-width:100%;height:auto}} .wrap{{max-width:100%}}
table{{border-collapse:collapse;width:100%;font-size:85%;margin:0.5em 0 1em}}
td,th{{padding:3px 6px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;overflow-wrap:anywhere}}
th{{background:#f5f5f5;font-weight:600;overflow-wrap:break-word}} h3{{margin:1em 0 0.2em;font-size:100%}}
figure{{margin:1.5em 0}} figcaption{{font-size:85%;color:#444}} code{{font-size:90%}}</style></head>
<body><h1>MLIPilot report: {name}</h1>
{intro}
{''.join(sections)}
<script>
window.addEventListener('load', () => {{
  const imgs = [...document.images];
  const d = document.body.dataset, root = document.documentElement;
  d.figuresRendered = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  d.figuresTotal = imgs.length;
  d.scrollWidth = root.scrollWidth;
  d.clientWidth = root.clientWidth;
  d.wideTables = [...document.querySelectorAll('table')].filter(t => t.scrollWidth > t.parentElement.clientWidth + 1).length;
}});
</script></body></html>"""
    report = out / "report.html"
    report.write_text(page)
    return report
