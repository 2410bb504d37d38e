"""Training-set size and labels spent against composite, per trial of a run (issue 22): how an agent's
data decisions paid off. Read from the run's ledger (label calls, in order) and its git history (the
frames each trial's commit trained on); the figure has one line per run."""

from __future__ import annotations

from pathlib import Path

from mlipilot.data_commits import frames_at
from mlipilot.records import DataActionEvent
from mlipilot.store import Store


def growth_rows(root: Path, store: Path) -> list[dict]:
    """Per decided trial: trial, verdict, composite, feasible, train_frames (data/train.xyz plus
    data/added/ at the trial's commit) and labels_spent (reference calls charged before it started)."""
    ledger = Store(store).ledger
    labels = sorted((e.at, int(e.calls or 0)) for e in ledger.events(DataActionEvent))
    out = []
    for t in ledger.latest():
        if not t.decided or not t.commit:
            continue
        spent = t.labels_spent if t.labels_spent is not None else sum(
            c for at, c in labels if t.started_at and at <= t.started_at)
        frames = t.train_frames if t.train_frames is not None else sum(frames_at(Path(root), t.commit).values())
        out.append({"trial": t.trial, "verdict": t.verdict, "composite": t.composite, "feasible": bool(t.feasible),
                    "labels_spent": spent, "train_frames": frames})
    return out


def plot_growth(runs: dict[str, list[dict]], out: Path) -> Path:
    """composite against training-set size and against labels spent, one line per run (label -> rows);
    feasible trials filled, infeasible ones hollow. Returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for label, rows in runs.items():
        for ax, x in zip(axes, ("train_frames", "labels_spent")):
            # trials before any data action carry no figures: left out
            pts = [r for r in rows if _number(r.get("composite")) and _number(r.get(x))]
            line, = ax.plot([r[x] for r in pts], [r["composite"] for r in pts], "-", label=label, alpha=0.7)
            for r in pts:
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


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
