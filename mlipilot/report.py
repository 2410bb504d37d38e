"""`mlipilot report PATH`: figures (PNG + SVG) and a self-contained report.html for a bench
directory (results.csv) or a single run directory (its ledger)."""

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
        from mlipilot.ledger import Ledger

        rows = Ledger(cfg.store / "ledger.jsonl").trials()
        agent = rows[0].get("agent", "agent") if rows else "agent"
        return pd.DataFrame(run_rows(cfg.store, agent, 0, cfg.name))
    raise MLIPilotError(f"{path}: neither a bench directory (results.csv) nor a run directory (mlipilot.toml)")


def _save(fig, out: Path, name: str) -> Path:
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight")
    return png


def make_figures(df: pd.DataFrame, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

    # 2. accept / reject / failed grid
    runs = list(df.groupby(["agent", "seed"]).groups)
    n_it = int(df["iteration"].max()) if len(df) else 1
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * n_it + 2.5), 0.35 * len(runs) + 1.2))
    for y, (agent, seed) in enumerate(runs):
        g = df[(df.agent == agent) & (df.seed == seed)]
        for _, r in g.iterrows():
            ax.add_patch(plt.Rectangle((r["iteration"] - 0.45, y - 0.4), 0.9, 0.8,
                                       color=VERDICT_COLOURS.get(r["verdict"], "#90a4ae")))
    ax.set_xlim(0.5, n_it + 0.5)
    ax.set_ylim(-0.6, len(runs) - 0.4)
    ax.set_yticks(range(len(runs)), [f"{a} s{s}" for a, s in runs], fontsize=8)
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

    # 4. tokens vs final score
    fig, ax = plt.subplots(figsize=(6, 4))
    for (agent, seed), g in df.groupby(["agent", "seed"]):
        ax.scatter(g["tokens_in"].sum() + g["tokens_out"].sum(), g["best_so_far"].iloc[-1], color=colours[agent],
                   label=agent if seed == df[df.agent == agent]["seed"].min() else None)
    ax.set(xlabel="tokens spent (in + out)", ylabel="final best composite", title="Tokens vs final score")
    ax.set_xscale("symlog")
    ax.legend(fontsize=8)
    figs["tokens_vs_score"] = _save(fig, out, "tokens_vs_score")
    plt.close(fig)
    return figs


def write_report(path: Path, out: Path | None = None) -> Path:
    path = Path(path)
    out = Path(out) if out else path / "report"
    df = load_table(path)
    if df.empty:
        raise MLIPilotError(f"{path}: no trials recorded yet — nothing to report")
    figs = make_figures(df, out)
    summ = summary(df)
    imgs = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{name.replace('_', ' ')}</figcaption></figure>" for name, p in figs.items())
    table = summ.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", border=0)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>MLIPilot report: {html.escape(path.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}}
figure{{margin:1.5em 0}}</style></head>
<body><h1>MLIPilot report: {html.escape(path.name)}</h1>
<p>{len(df)} iterations over {df.groupby(['agent', 'seed']).ngroups} runs. Lower composite is better.</p>
<h2>Summary</h2><div style="overflow-x:auto;font-size:85%">{table}</div>
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
