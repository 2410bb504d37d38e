"""The data part of the agent's brief (Lang2MLIP's s = dataset, model, evaluations, log): the training
set's composition, the labelling budget and the last data actions' outcomes, compact."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from ase.io import read

from mlipilot.data_actions.actions import DataActions


def composition(frames: list) -> list[str]:
    """One line per config_type: frames by source, E/atom range, max |F| range."""
    by = defaultdict(list)
    for a in frames:
        by[str(a.info.get("config_type", "default"))].append(a)
    lines = []
    for ct in sorted(by):
        group = by[ct]
        sources = defaultdict(int)
        for a in group:
            sources["shipped" if a.info.get("source", "shipped") == "shipped" else "added"] += 1
        e = [a.info["REF_energy"] / len(a) for a in group if "REF_energy" in a.info]
        f = [float(np.linalg.norm(a.arrays["REF_forces"], axis=1).max()) for a in group if "REF_forces" in a.arrays]
        src = ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
        lines.append(f"- {ct}: {len(group)} ({src})"
                     + (f"; E/atom {min(e):.3f}..{max(e):.3f} eV" if e else "")
                     + (f"; max|F| {min(f):.2f}..{max(f):.2f} eV/Å" if f else ""))
    return lines


def data_state(acts: DataActions, last: int = 4) -> str:
    """The compact state: composition, budget, the last data actions."""
    frames = acts.training_frames()
    added = sum(1 for a in frames if a.info.get("source", "shipped") != "shipped")
    parts = [f"training set: {len(frames)} frames ({added} added by data actions)", *composition(frames)]
    if valid := acts._added_files("valid"):
        n = sum(len(read(p, index=":", format="extxyz")) for p in valid)
        parts.append(f"validation frames added: {n} ({', '.join(p.relative_to(acts.root).as_posix() for p in valid)})")
    parts.append(acts.budget().line())
    rows = acts.rows()[-last:]
    if rows:
        parts.append("last data actions:")
        parts += [f"- {r.action}: {r.summary or r.what or ''}"[:300] for r in rows]
    return "\n".join(parts)


def brief_section(cfg) -> str:
    """The '## Training data' section of the per-iteration brief (mlipilot.context)."""
    return "## Training data (data tools: sample_data, select_data, label_data, add_data, prune_data)\n" + \
        data_state(DataActions(cfg, progress=lambda s: None))
