"""Holdout metrics beyond the built-in errors: one module each (`UNIT`, `compute(predictions) -> float`)
plus one line in METRIC_PLUGINS. `compute` gets the model's Predictions on the holdout
(scorecard.accuracy.Predictions: made once, shared by every metric), never the model itself. A
scorecard names them like any metric; `parse_metric` knows them, so a misspelled name fails when the
scorecard loads."""

from __future__ import annotations

from types import ModuleType

from mlipilot.registry import Registry

METRIC_PLUGINS: Registry[ModuleType] = Registry("metric", {  # metric name -> module
    "energy_max_abs_error": "mlipilot.scorecard.metric_plugins.energy_max_abs_error",
})


def plugin(name: str) -> ModuleType:
    return METRIC_PLUGINS.resolve(name)
