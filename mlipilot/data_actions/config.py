"""The [data] table of mlipilot.toml: the labelling budget and the reference. mlipilot.toml is a
protected file (its hash is in the sealed protected.json), so the budget is sealed at init."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlipilot.errors import config_error

DEFAULT_CALLS = 200  # a run without [data] may still label this many frames
DEFAULT_CPU_SECONDS = 3600.0
DATA_FIELDS = {"label_budget": dict, "reference": str}
EXAMPLE = "write [data] with label_budget = { calls = 200, cpu_seconds = 3600 }"


@dataclass(frozen=True)
class DataConfig:
    calls: int = DEFAULT_CALLS
    cpu_seconds: float = DEFAULT_CPU_SECONDS
    reference: str | None = None  # None: the scorecard's stability.reference
    enabled: bool = False  # a [data] table is present: LLM agents are offered the data tools and see the data brief


def parse_data_table(path: Path, table: dict) -> DataConfig:
    """Validate [data]; one line naming the field and the fix."""
    for key, value in table.items():
        if key not in DATA_FIELDS:
            raise config_error(path, f"data.{key}", "unknown field", f"remove it (known: {', '.join(DATA_FIELDS)})")
        if not isinstance(value, DATA_FIELDS[key]):
            raise config_error(path, f"data.{key}", f"wrong type ({value!r})", EXAMPLE)
    budget = table.get("label_budget", {})
    for key, value in budget.items():
        if key not in ("calls", "cpu_seconds"):
            raise config_error(path, f"data.label_budget.{key}", "unknown field", "use calls and cpu_seconds")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise config_error(path, f"data.label_budget.{key}", f"wrong type ({value!r})", EXAMPLE)
        if value <= 0:
            raise config_error(path, f"data.label_budget.{key}", f"must be > 0 ({value!r})",
                               "give a positive budget (a run that must not label leaves the data actions unused)")
    return DataConfig(int(budget.get("calls", DEFAULT_CALLS)), float(budget.get("cpu_seconds", DEFAULT_CPU_SECONDS)),
                      table.get("reference"), bool(table))
