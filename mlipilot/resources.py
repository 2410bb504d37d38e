"""Where the shipped benchmarks, scorecards and workspace templates live.

They sit beside the package in the source tree (README: `pip install -e .`);
MLIPILOT_HOME overrides that for installs that keep them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlipilot.errors import MLIPilotError


def project_root() -> Path:
    root = Path(os.environ.get("MLIPILOT_HOME", Path(__file__).resolve().parent.parent))
    if not (root / "benchmarks").is_dir():
        raise MLIPilotError(f"{root}: no benchmarks/ folder — install MLIPilot from its source tree with "
                            "`pip install -e .`, or set MLIPILOT_HOME to that tree")
    return root


def cache_dir() -> Path:
    """Generated benchmark data (deterministic, so safe to reuse between runs)."""
    return Path(os.environ.get("MLIPILOT_CACHE", Path.home() / ".cache" / "mlipilot"))
