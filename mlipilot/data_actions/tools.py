"""The data actions as tools for LLM agents: the same schema style as mlipilot.workspace_tools and
the same code path as scripted agents (DataActions). Offered when mlipilot.toml has a [data] table.
Arguments are checked against these schemas before anything runs (mlipilot.tool_args: unknown keys,
types, enums, bounds, NaN and Infinity refused); a refusal (bad input, spent budget) comes back as
text the agent reads, never as a crash."""

from __future__ import annotations

import json

from mlipilot.data_actions.records import DataRefusal, Driver, Method, Strategy
from mlipilot.data_actions.sampling import T_RANGE_K
from mlipilot.tool_args import check_arguments


def _schema(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}


# Bounds the agent sees and mlipilot.tool_args enforces before any DataActions call (they repeat
# DataActions' own checks: MAX_FRAMES, MAX_STEPS, T_RANGE_K, amplitude, fraction, trust).
MAX_FRAMES, MAX_STEPS, MAX_STRUCTURES, MAX_TEMPERATURES = 5000, 100_000, 1000, 20
SEED = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_KELVIN = {"type": "number", "minimum": T_RANGE_K[0], "maximum": T_RANGE_K[1]}
DATA_TOOL_SCHEMAS = [
    _schema("sample_data", "Generate candidate frames starting from TRAINING frames whose config_type matches "
            "`source` (a glob): MD driven by the accepted model or the reference (langevin, npt, ramp), or "
            "model-free perturbations (rattle, strain, vacancy, compression). MD stops early on the "
            "scorecard's guards and runs at the scorecard's MD timestep. Returns a pool id, per-frame "
            "statistics and the early stops.",
            {"source": {"type": "string", "maxLength": 200,
                        "description": "config_type glob, e.g. 'md1500' or 'bulk*'"},
             "driver": {"type": "string", "enum": [d.value for d in Driver]},
             "method": {"type": "string", "enum": [m.value for m in Method]},
             "temperatures": {"type": "array", "description": "kelvin, e.g. [2000, 3000]; ramp: [[300, 3000]]",
                              "maxItems": MAX_TEMPERATURES,
                              "items": {"anyOf": [_KELVIN, {"type": "array", "items": _KELVIN,
                                                            "minItems": 2, "maxItems": 2}]}},
             "n_frames": {"type": "integer", "minimum": 1, "maximum": MAX_FRAMES},
             "steps": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS},
             "structures": {"type": "integer", "minimum": 1, "maximum": MAX_STRUCTURES},
             "amplitude": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5,
                           "description": "rattle: Å; strain, compression: a fraction"},
             "seed": SEED},
            ["source", "method", "n_frames"]),
    _schema("select_data", "Choose frames of a pool to label: max_error (labels the whole pool, keeps the largest "
            "force errors), committee (force disagreement of the accepted model and its noise replicates; "
            "optional trust [lo, hi] eV/Å), fps (farthest from the training set on MACE descriptors), random.",
            {"pool": _ID, "strategy": {"type": "string", "enum": [s.value for s in Strategy]},
             "n": {"type": "integer", "minimum": 1, "maximum": MAX_FRAMES},
             "fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
             "quotas": {"type": "object", "description": "config_type glob -> max frames",
                        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": MAX_FRAMES}},
             "trust": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2},
             "seed": SEED},
            ["pool", "strategy"]),
    _schema("label_data", "Label a selection with the benchmark's reference calculator (spends the labelling "
            "budget: one reference call per new frame).", {"selection": _ID}, ["selection"]),
    _schema("add_data", "Add labelled frames to the training set (data/added/<n>.xyz, a data commit). The next "
            "run_experiment trains on them; a rejected experiment drops them again. split 'valid' adds them to the "
            "validation set instead (data/added/valid/<n>.xyz: they choose the best checkpoint, never trained on).",
            {"labelled": _ID, "split": {"type": "string", "enum": ["train", "valid"]}}, ["labelled"]),
    _schema("prune_data", "Remove added frames: 'addition:N', 'force_above:X' (eV/Å), 'energy_above:X' (eV/atom) "
            "or 'closest_below:D' (Å).", {"rule": {"type": "string", "maxLength": 100}}, ["rule"]),
    _schema("data_status", "The training set's composition, labels spent and left, the last data actions.", {}, []),
]
DATA_TOOL_NAMES = tuple(s["function"]["name"] for s in DATA_TOOL_SCHEMAS)
DATA_TOOL_PARAMETERS = {s["function"]["name"]: s["function"]["parameters"] for s in DATA_TOOL_SCHEMAS}


def _pool_text(pool) -> str:
    temps = sorted({s["temperature"] for s in pool.frames_stats if s.get("temperature") is not None})
    dmin = [s["d_min"] for s in pool.frames_stats]
    return (pool.summary() + (f"\nframe temperatures {temps[0]:.0f}..{temps[-1]:.0f} K" if temps else "")
            + (f"; closest approach {min(dmin):.2f} Å" if dmin else ""))


def call_data_tool(cfg, name: str, args: dict) -> str:
    """Run one data tool. Its arguments are checked against the tool's schema first (ArgumentError,
    a ValueError, before anything runs); refusals (DataRefusal) come back as text for the agent; any
    other exception propagates to the dispatcher (WorkspaceTools.call), which answers with it."""
    schema = DATA_TOOL_PARAMETERS.get(name)
    if schema is None:
        raise KeyError(name)
    args = check_arguments(name, schema, args)
    from mlipilot.data_actions.actions import DataActions

    acts = DataActions(cfg, progress=lambda s: None)
    try:
        if name == "sample_data":
            return _pool_text(acts.sample(**args))
        if name == "select_data":
            return acts.select(**args).summary()
        if name == "label_data":
            lab = acts.label(**args)
            return lab.summary() + f"; {acts.budget().line()}" + (
                f"; failed: {json.dumps(lab.failed[:3])}" if lab.failed else "")
        if name == "add_data":
            return acts.add(**args).summary()
        if name == "prune_data":
            return acts.prune(**args).summary()
        from mlipilot.data_actions.brief import data_state

        return data_state(acts)  # data_status
    except DataRefusal as e:
        return f"Refused: {e}"
