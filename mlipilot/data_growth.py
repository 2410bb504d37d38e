"""Training-set size and labels spent against composite, per trial of a run (issue 22): how an agent's
data decisions paid off. Read from the run's ledger (label calls, in order) and its git history (the
frames each trial's commit trained on); the figure has one line per run."""

from __future__ import annotations

from pathlib import Path

from mlipilot.data_actions.commits import frames_at
from mlipilot.ledger import Ledger, latest_trials


def growth_rows(root: Path, store: Path) -> list[dict]:
    """Per finished trial: trial, verdict, composite, feasible, train_frames (data/train.xyz plus
    data/added/ at the trial's commit) and labels_spent (reference calls charged before it ended)."""
    rows = Ledger(Path(store) / "ledger.jsonl").rows()
    finished = {t["trial"]: t for t in latest_trials(rows) if t.get("commit")}
    out, spent, seen = [], 0, set()
    for r in rows:
        if r.get("event") == "data_action" and r.get("action") == "label":
            spent += int(r.get("calls") or 0)
        n = r.get("trial")
        if n in finished and n not in seen and r.get("status") == "finished":
            seen.add(n)
            t = finished[n]
            out.append({"trial": n, "verdict": t.get("verdict"), "composite": t.get("composite"),
                        "feasible": bool(t.get("feasible")), "labels_spent": spent,
                        "train_frames": sum(frames_at(Path(root), t["commit"]).values())})
    return out


def plot_growth(runs: dict[str, list[dict]], out: Path) -> Path:
    """composite against training-set size and against labels spent, one line per run (label -> rows);
    feasible trials filled, infeasible ones hollow. Returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for label, rows in runs.items():
        rows = [r for r in rows if isinstance(r.get("composite"), (int, float))]
        for ax, x in zip(axes, ("train_frames", "labels_spent")):
            line, = ax.plot([r[x] for r in rows], [r["composite"] for r in rows], "-", label=label, alpha=0.7)
            for r in rows:
                ax.plot(r[x], r["composite"], "o", color=line.get_color(),
                        markerfacecolor=line.get_color() if r["feasible"] else "none")
    axes[0].set_xlabel("training frames")
    axes[1].set_xlabel("reference labels spent")
    axes[0].set_ylabel("composite (lower is better)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Data against score (filled: feasible)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "data_growth.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png
