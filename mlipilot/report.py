"""`mlipilot report PATH`: figures (PNG + SVG) and a self-contained report.html for a bench
directory (results.csv) or a single run directory (its ledger). A run's report goes to its private
store: a file added to the run's work tree would make the next trial refuse (integrity)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from mlipilot.errors import MLIPilotError
from mlipilot.results import run_rows, summary

VERDICT_COLOURS = {"accepted": "#2e7d32", "rejected": "#c62828", "failed": "#424242", "no_experiment": "#bdbdbd"}


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


def make_figures(df: pd.DataFrame, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out.mkdir(parents=True, exist_ok=True)
    agents = sorted(df["agent"].unique())
    colours = {a: plt.cm.tab10(i % 10) for i, a in enumerate(agents)}
    figs = {}

    # 1. composite vs iteration: each trial a point (hollow = infeasible), best-so-far lines
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (agent, seed), g in df.groupby(["agent", "seed"]):
        c = colours[agent]
        ax.step(g["iteration"], g["best_so_far"], where="post", color=c, alpha=0.8,
                label=agent if seed == df[df.agent == agent]["seed"].min() else None)
        if "noise_sigma" in g and g["noise_sigma"].notna().any():  # the incumbent's measured seed noise
            sigma = g["noise_sigma"].ffill().fillna(0.0)
            ax.fill_between(g["iteration"], g["best_so_far"] - sigma, g["best_so_far"] + sigma, step="post",
                            color=c, alpha=0.15, lw=0)
        pts = g.dropna(subset=["composite"])
        feas = pts["feasible"].astype(bool)
        ax.scatter(pts["iteration"][feas], pts["composite"][feas], color=c, s=22, zorder=3)
        ax.scatter(pts["iteration"][~feas], pts["composite"][~feas], facecolors="none", edgecolors=c, s=22, zorder=3)
        infeasible = g[~g["best_so_far_feasible"].astype(bool)]
        if len(infeasible):
            ax.axvspan(infeasible["iteration"].min() - 0.5, infeasible["iteration"].max() + 0.5,
                       color="#ffcdd2", alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set(xlabel="iteration", ylabel="composite score (lower is better)",
           title="Composite vs iteration (hollow: infeasible trial; red: best still infeasible;\n"
                 "band: best ± the seed noise the harness measured)")
    ax.legend(fontsize=8)
    figs["composite_vs_iteration"] = _save(fig, out, "composite_vs_iteration")
    plt.close(fig)

    # 2. accept / reject / failed grid; a single run gets one row per agent that ran trials in it
    single = df.groupby(["agent", "seed"]).ngroups == 1
    who = df["trial_agent"].fillna("?").astype(str) if single and "trial_agent" in df else None
    rows = sorted(who.unique()) if who is not None else list(df.groupby(["agent", "seed"]).groups)
    n_it = int(df["iteration"].max()) if len(df) else 1
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * n_it + 2.5), 0.35 * len(rows) + 1.2))
    for _, r in df.iterrows():
        y = rows.index(who[r.name] if who is not None else (r["agent"], r["seed"]))
        ax.add_patch(plt.Rectangle((r["iteration"] - 0.45, y - 0.4), 0.9, 0.8,
                                   color=VERDICT_COLOURS.get(r["verdict"], "#90a4ae")))
    ax.set_xlim(0.5, n_it + 0.5)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)), rows if who is not None else [f"{a} s{s}" for a, s in rows], fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_title("Verdicts: " + ", ".join(f"{k} = {v}" for k, v in
                                          {"green": "accepted", "red": "rejected", "dark": "failed"}.items()))
    figs["verdict_grid"] = _save(fig, out, "verdict_grid")
    plt.close(fig)

    summ = summary(df)
    # 3. final score ranking, mean ± SEM over seeds, with the fraction of seeds reaching feasibility
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(summ) + 1.5))
    ranked = summ.sort_values("best_composite_mean")
    ax.barh(ranked["agent"], ranked["best_composite_mean"], xerr=ranked["best_composite_sem"].fillna(0),
            color=[colours[a] for a in ranked["agent"]])
    for y, (_, r) in enumerate(ranked.iterrows()):
        ax.text(r["best_composite_mean"], y, f"  feasible {r['feasible_fraction']:.0%}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="final best composite (mean ± SEM over seeds; lower is better)", title="Ranking")
    figs["ranking"] = _save(fig, out, "ranking")
    plt.close(fig)

    # 4. tokens vs final score: only when some were spent (the scripted baselines and humans spend none)
    if (df["tokens_in"].fillna(0) + df["tokens_out"].fillna(0)).sum() > 0:
        fig, ax = plt.subplots(figsize=(6, 4))
        for (agent, seed), g in df.groupby(["agent", "seed"]):
            ax.scatter(g["tokens_in"].sum() + g["tokens_out"].sum(), g["best_so_far"].iloc[-1],
                       color=colours[agent], label=agent if seed == df[df.agent == agent]["seed"].min() else None)
        ax.set(xlabel="tokens spent (in + out)", ylabel="final best composite", title="Tokens vs final score")
        ax.set_xscale("symlog")
        ax.legend(fontsize=8)
        figs["tokens_vs_score"] = _save(fig, out, "tokens_vs_score")
        plt.close(fig)

    # a single run is drawn per trial (the number `mlipilot show N` takes), a bench per iteration
    x = "trial" if single else "iteration"
    if groups := _groups(df):
        figs["errors_per_group"] = _errors_per_group(plt, df, groups, agents, x, out)
    if md_names := sorted(c.removeprefix("md_ok_") for c in df.columns if c.startswith("md_ok_")):
        figs["md_outcomes"] = _md_outcomes(plt, df, md_names, single, x, out)
    if "validated" in df and df["validated"].notna().any():
        figs["validation"] = _validation(plt, df, single, out)
    if "labels_spent" in df and df["labels_spent"].notna().any():  # data actions: what the added data bought
        from mlipilot.data_growth import plot_growth

        figs["data_growth"] = plot_growth({f"{agent} seed {seed}": g.to_dict("records")
                                           for (agent, seed), g in df.groupby(["agent", "seed"])}, out)
    return figs


def _groups(df: pd.DataFrame) -> list[str]:
    """The holdout's config_types, from the energy_rmse_<group> metrics (force_rmse_<X> may be a
    per-element error instead, so energy names the groups; glob groups a scorecard names repeat them)."""
    return sorted(c.removeprefix("metric_energy_rmse_") for c in df.columns
                  if c.startswith("metric_energy_rmse_") and c != "metric_energy_rmse_max_group"
                  and not any(ch in c for ch in "*?[") and df[c].notna().any())


def _errors_per_group(plt, df: pd.DataFrame, groups: list[str], agents: list[str], x: str, out: Path) -> Path:
    """Energy and force RMSE per config_type vs trial (a bench: mean over seeds, a column per agent):
    which kind of structure the model gets wrong, where the overall RMSE hides it."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, len(agents), figsize=(max(6.5, 4.5 * len(agents)), 6), squeeze=False,
                             sharex=True)
    for col, agent in enumerate(agents):
        g = df[(df.agent == agent) & df[x].notna()]
        for row, (qty, unit) in enumerate([("energy_rmse", "meV/atom"), ("force_rmse", "meV/Å")]):
            ax = axes[row][col]
            for i, group in enumerate(groups):
                c = f"metric_{qty}_{group}"
                if c in g:
                    series = g.groupby(x)[c].mean()
                    ax.plot(series.index, series.values, marker="o", ms=4, color=plt.cm.tab10(i % 10), label=group)
            ax.set_yscale("log")
            ax.set(ylabel=f"{qty} ({unit})" if col == 0 else None,
                   title=agent if row == 0 and len(agents) > 1 else None)
            ax.grid(alpha=0.3, which="both")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1][col].set_xlabel(x)
    axes[0][-1].legend(fontsize=8, title="config_type", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Holdout errors per config_type (a gap: no model scored)")
    path = _save(fig, out, "errors_per_group")
    plt.close(fig)
    return path


def _md_outcomes(plt, df: pd.DataFrame, md_names: list[str], single: bool, x: str, out: Path) -> Path:
    """Each MD stability run of each trial: green ran to the end, red failed (steps reached written
    in the cell), grey not run (no model)."""
    from matplotlib.ticker import MaxNLocator

    keys = [(a, s, n) for (a, s), _ in df.groupby(["agent", "seed"]) for n in md_names]
    n_x = int(df[x].max()) if df[x].notna().any() else 1
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * n_x + 3), 0.35 * len(keys) + 1.2))
    for y, (agent, seed, name) in enumerate(keys):
        g = df[(df.agent == agent) & (df.seed == seed) & df[x].notna()]
        for _, r in g.iterrows():
            ok, steps = r.get(f"md_ok_{name}"), r.get(f"md_steps_{name}")
            colour = "#cfd8dc" if pd.isna(ok) else ("#2e7d32" if ok else "#c62828")
            ax.add_patch(plt.Rectangle((r[x] - 0.45, y - 0.4), 0.9, 0.8, color=colour))
            if not pd.isna(steps):
                ax.text(r[x], y, f"{int(steps)}", ha="center", va="center", fontsize=6, color="white")
    ax.set_xlim(0.5, n_x + 0.5)
    ax.set_ylim(-0.6, len(keys) - 0.4)
    ax.set_yticks(range(len(keys)), [n if single else f"{a} s{s} {n}" for a, s, n in keys], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x)
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


def validation_table(df: pd.DataFrame, single: bool) -> pd.DataFrame:
    """The validated trials: the scorecard's verdict beside `mlipilot validate`'s."""
    t = df[df["validated"].notna()] if "validated" in df else df.iloc[:0]
    t = t.assign(agent=t["trial_agent"] if single else t["agent"], trial=t["trial"].astype(int),
                 validation=t["validated"].map(lambda v: "pass" if bool(v) else "FAIL"),
                 failed=t["validation_failed"].map(lambda v: "" if pd.isna(v) else str(v).replace(",", ", ")))
    cols = ([] if single else ["run"]) + ["trial", "agent", "verdict", "feasible", "validation", "failed"]
    return t[cols].rename(columns={"failed": "failed checks"})


def trial_table(df: pd.DataFrame) -> pd.DataFrame:
    """A single run's trials, each with the agent that ran it (a run can change hands)."""
    t = df[df["trial"].notna()] if "trial" in df else df.iloc[:0]
    cols = {"trial": "trial", "trial_agent": "agent", "verdict": "verdict", "composite": "composite",
            "feasible": "feasible", "metric_md_failed_runs": "MD failed", "foundation": "fine-tuned from",
            "hypothesis": "hypothesis"}
    if "foundation" in t and t["foundation"].isna().all():
        t = t.drop(columns="foundation")  # a run without foundation models: no empty column
    t = t[[c for c in cols if c in t]].rename(columns=cols)
    return t.assign(trial=t["trial"].astype(int), hypothesis=t["hypothesis"].fillna("").str.slice(0, 100))


def write_report(path: Path, out: Path | None = None) -> Path:
    path = Path(path)
    df = load_table(path)
    if df.empty:
        raise MLIPilotError(f"{path}: no trials recorded yet — nothing to report")
    out = output_dir(path, out)
    figs = make_figures(df, out)
    summ = summary(df)
    imgs = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{name.replace('_', ' ')}</figcaption></figure>" for name, p in figs.items())
    fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "–", "border": 0, "index": False}
    table = summ.to_html(**fmt)
    trials = ""
    single = df.groupby(["agent", "seed"]).ngroups == 1
    if single:
        trials = f'<h2>Trials</h2><div style="overflow-x:auto;font-size:85%">{trial_table(df).to_html(**fmt)}</div>'
    if len(validated := validation_table(df, single)):
        trials += ('<h2>Validated trials</h2><p>The scorecard\'s verdict beside <code>mlipilot validate</code>\'s '
                   f'(longer MD, properties never trained on).</p><div style="overflow-x:auto;font-size:85%">'
                   f"{validated.to_html(**fmt)}</div>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>MLIPilot report: {html.escape(path.resolve().name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}}
figure{{margin:1.5em 0}}</style></head>
<body><h1>MLIPilot report: {html.escape(path.resolve().name)}</h1>
<p>{len(df)} iterations over {df.groupby(['agent', 'seed']).ngroups} runs. Lower composite is better.</p>
<h2>Summary</h2><div style="overflow-x:auto;font-size:85%">{table}</div>
{trials}
<h2>Figures</h2>{imgs}
<script>
window.addEventListener('load', () => {{
  const imgs = [...document.images];
  document.body.dataset.figuresRendered = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.figuresTotal = imgs.length;
}});
</script></body></html>"""
    report = out / "report.html"
    report.write_text(page)
    return report
