"""The [data] table of mlipilot.toml: the labelling budget and the reference. mlipilot.toml is a
protected file (its hash is in the sealed protected.json), so the budget is sealed at init."""

from __future__ import annotations

from dataclasses import dataclass

from mlipilot.schema import OMIT, Field, Table

DEFAULT_CALLS = 200  # a run without [data] may still label this many frames
DEFAULT_CPU_SECONDS = 3600.0
EXAMPLE = "write [data] with label_budget = { calls = 200, cpu_seconds = 3600 }"


@dataclass(frozen=True)
class DataConfig:
    calls: int = DEFAULT_CALLS
    cpu_seconds: float = DEFAULT_CPU_SECONDS
    reference: str | None = None  # None: the scorecard's stability.reference
    enabled: bool = False  # a [data] table is present: LLM agents are offered the data tools and see the data brief


def _positive(v: float) -> tuple[str, str] | None:
    return None if v > 0 else (f"must be > 0 ({v!r})",
                               "give a positive budget (a run that must not label leaves the data actions unused)")


# [data], declared (mlipilot.schema reads it with the rest of mlipilot.toml)
DATA_TABLE = Table({
    "label_budget": Field(Table({"calls": Field(int, DEFAULT_CALLS, fix=EXAMPLE, check=_positive),
                                 "cpu_seconds": Field(float, DEFAULT_CPU_SECONDS, fix=EXAMPLE, check=_positive)},
                                fix=EXAMPLE), OMIT, fix=EXAMPLE),
    "reference": Field(str, OMIT, fix=EXAMPLE)}, fix=EXAMPLE)


def data_config(table: dict | None) -> DataConfig:
    """The DataConfig of a [data] table read by DATA_TABLE (None: no table, the defaults, tools off)."""
    if table is None:
        return DataConfig()
    budget = table.get("label_budget") or {}
    return DataConfig(int(budget.get("calls", DEFAULT_CALLS)), float(budget.get("cpu_seconds", DEFAULT_CPU_SECONDS)),
                      table.get("reference"), True)
