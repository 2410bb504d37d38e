"""mlipilot.toml: the run directory's harness-owned settings, validated field by field."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mlipilot.errors import MLIPilotError, config_error
from mlipilot.executors import (
    ExecutorKind,
    UnknownExecutor,
    executor_names,
    get_executor,
    registered_kinds,
)
from mlipilot.sandbox import LIMIT_FIELDS, Limits, SandboxConfig, SandboxKind

CONFIG_NAME = "mlipilot.toml"
EXECUTORS = executor_names()

_TEMPLATE = """\
# Harness-owned: `mlipilot trial` refuses to run if this file changes. Edit only before a run starts
# (then re-run `mlipilot init`).
[run]
name = "{name}"
benchmark = "{benchmark}"
branch = "{branch}"
store = "{store}"          # private: holdout, ledger, trial artefacts (never inside the run directory)
editable = ["train/"]      # the only paths an edit (or an agent) may touch

[executor]
kind = "{executor}"         # @EXECUTOR_NAMES@ (chosen here, never auto-detected)
train_timeout_min = {train_timeout_min}
score_timeout_min = {score_timeout_min}
@EXECUTOR_OPTIONS@
[sandbox]                   # where train/train.py runs: bwrap | apptainer | none (see README, Threat model)
kind = "{sandbox}"
# image = "/path/to/env.sif"   # apptainer only: an image with your Python environment and MLIPilot
# hide = ["/data/my_holdout_copies"]   # more paths train.py must not see (the store and the holdout's source are hidden already)
# limits of each sandboxed job (defaults shown); a job over one fails with the limit named
# processes = 512             # tasks (threads count); as root it needs a writable pids cgroup
# memory_gb = 16              # per process (heap and anonymous memory)
# file_gb = 2                 # the largest file it may write
# output_gb = 4               # its output folder, measured after the job
# tmp_mb = 512                # its private /tmp (RAM-backed)
# export_timeout_min = 5      # the harness's export step after train.py

[noise]                     # verdicts that survive seed noise (see README)
seeds = 3                   # `mlipilot noise`: trainings of the incumbent, one harness seed each
z = 2.0                     # margin = max(scorecard noise_margin x incumbent, z x sigma)
confirm = 3.0               # a win smaller than confirm x sigma is trained again with a second seed
base_seed = {base_seed}               # every trial trains with this seed; replicates use base_seed + 1, + 2, ...

[agent]                     # defaults for `mlipilot run`; its flags override them
model = "expert"            # expert | random | optuna | local:qwen2.5-coder-0.5b | any litellm model string
iterations = 6
llm_calls_per_iteration = 12
# api_base = "http://127.0.0.1:8000/v1"   # an OpenAI-compatible server
# api_key_env = "OPENAI_API_KEY"          # the variable holding the key (keys never go in this file)
# max_tokens = 200000
# max_cost = 5.0
# max_wall_min = 120

# [data]                    # data actions (sample / select / label / add / prune): the labelling budget
# label_budget = {{ calls = 200, cpu_seconds = 3600 }}
# reference = "emt"         # default: the scorecard's stability.reference; "pyscf" for B3LYP/6-31G(d)
"""
# the executor part comes from the registry: each kind's commented option lines (braces kept literal)
TEMPLATE = _TEMPLATE.replace("@EXECUTOR_NAMES@", " | ".join(EXECUTORS)).replace(
    "@EXECUTOR_OPTIONS@", "".join(k.config_template for k in registered_kinds()).replace("{", "{{").replace("}", "}}"))


@dataclass(frozen=True)
class NoiseConfig:
    seeds: int = 3
    z: float = 2.0
    confirm: float = 3.0
    base_seed: int = 1


@dataclass(frozen=True)
class RunConfig:
    root: Path
    name: str
    benchmark: str
    branch: str
    store: Path
    editable: tuple[str, ...]
    executor: str
    train_timeout_min: float
    score_timeout_min: float
    agent: dict  # the optional [agent] table, validated
    slurm: dict  # the executor options found (the kinds' config_fields), whatever the kind
    sandbox: SandboxConfig = SandboxConfig()  # [sandbox]; runs made before it existed get bwrap
    noise: NoiseConfig = NoiseConfig()  # [noise]
    data: "DataConfig | None" = None  # [data] (mlipilot.data_actions.config); None: its defaults


_NOISE_FIELDS = {"seeds": int, "z": (int, float), "confirm": (int, float), "base_seed": int}
_SANDBOX_FIELDS = {"kind": str, "image": str, "hide": list, **LIMIT_FIELDS}


def _optional_table(path: Path, d: dict, name: str, fields: dict, example: str) -> dict:
    """An optional [name] table: a table, with known keys only, each of its type (bools are not numbers)."""
    table = d.get(name, {})
    if not isinstance(table, dict):
        raise config_error(path, f"[{name}]", "expected a table", example)
    for key, value in table.items():
        if key not in fields:
            raise config_error(path, f"{name}.{key}", "unknown field", f"remove it (known: {', '.join(fields)})")
        if not isinstance(value, fields[key]) or isinstance(value, bool):
            raise config_error(path, f"{name}.{key}", f"wrong type ({value!r})", "see the commented template")
    return table


def _executor_kinds(path: Path, ex: dict) -> list[ExecutorKind]:
    """Every registered kind, plus the one `[executor] kind` names by dotted path: each may bring
    option fields, and all are read whatever the kind (`--executor` may switch to another)."""
    kinds = registered_kinds()
    name = ex.get("kind")
    if isinstance(name, str) and name not in EXECUTORS:
        try:
            kinds.append(get_executor(name))
        except UnknownExecutor as e:
            raise config_error(path, "executor.kind", e.problem, e.fix) from None
    return kinds


def _executor_options(path: Path, d: dict, kinds: list[ExecutorKind]) -> dict:
    """The kinds' option fields: keys beside `kind` in [executor], or their own optional table."""
    options = {}
    for kind in kinds:
        if kind.config_section != "executor":
            options.update(_optional_table(path, d, kind.config_section, kind.config_fields,
                                           f"see the {kind.label or kind.name} executor's options"))
            continue
        for key, kind_type in kind.config_fields.items():
            if key in d["executor"]:
                value = d["executor"][key]
                if not isinstance(value, kind_type) or isinstance(value, bool):
                    raise config_error(path, f"executor.{key}", f"wrong type ({value!r})",
                                       f"see the commented {kind.label or kind.name} keys in the template")
                options[key] = value
    return options


_AGENT_FIELDS = {"model": str, "api_base": str, "api_key_env": str, "iterations": int,
                 "llm_calls_per_iteration": int, "max_tokens": int, "max_cost": (int, float),
                 "max_wall_min": (int, float), "seed": int}


_FIELDS = {
    "run": {"name": str, "benchmark": str, "branch": str, "store": str, "editable": list},
    "executor": {"kind": str, "train_timeout_min": (int, float), "score_timeout_min": (int, float)},
}


def load_run_config(root: Path) -> RunConfig:
    root = Path(root).resolve()
    path = root / CONFIG_NAME
    if not path.is_file():
        raise MLIPilotError(f"{path}: not found — run this inside a run directory made by `mlipilot init`, "
                            "or pass --run DIR")
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise MLIPilotError(f"{path}: not valid TOML ({e}) — restore it with `git checkout -- {CONFIG_NAME}`") from None
    for section, fields in _FIELDS.items():
        if not isinstance(d.get(section), dict):
            raise config_error(path, f"[{section}]", "missing section", f"restore it with `git checkout -- {CONFIG_NAME}`")
        if section == "executor":
            kinds = _executor_kinds(path, d[section])
            options = _executor_options(path, d, kinds)
        for key in d[section]:
            if section == "executor" and key in options:
                continue
            if key not in fields:
                raise config_error(path, f"{section}.{key}", "unknown field", f"remove it (known: {', '.join(fields)})")
        for key, kind in fields.items():
            if key not in d[section]:
                raise config_error(path, f"{section}.{key}", "missing", f"restore it with `git checkout -- {CONFIG_NAME}`")
            if not isinstance(d[section][key], kind) or isinstance(d[section][key], bool):
                raise config_error(path, f"{section}.{key}", f"wrong type ({d[section][key]!r})",
                                   f"write a {kind.__name__ if isinstance(kind, type) else 'number'}")
    run, ex = d["run"], d["executor"]
    try:
        get_executor(ex["kind"])
    except UnknownExecutor as e:
        raise config_error(path, "executor.kind", e.problem, e.fix) from None
    editable = tuple(run["editable"])
    for e in editable:
        if not isinstance(e, str) or e.startswith("/") or ".." in Path(e).parts or not e.strip("/"):
            raise config_error(path, "run.editable", f"bad entry {e!r}", "use relative folders such as 'train/'")
    for key in ("train_timeout_min", "score_timeout_min"):
        if ex[key] <= 0:
            raise config_error(path, f"executor.{key}", "must be > 0", "give minutes, e.g. 30")
    agent = _optional_table(path, d, "agent", _AGENT_FIELDS, 'write [agent] with model = "expert"')
    for key, value in agent.items():
        if key == "api_key" or (isinstance(value, str) and value.startswith("sk-")):
            raise config_error(path, f"agent.{key}", "looks like an API key", "put the key in an environment "
                               "variable and name it with api_key_env")
    sandbox = _optional_table(path, d, "sandbox", _SANDBOX_FIELDS, 'write [sandbox] with kind = "bwrap"') or {"kind": "bwrap"}
    if not all(isinstance(x, str) and Path(x).is_absolute() for x in sandbox.get("hide", [])):
        raise config_error(path, "sandbox.hide", f"wrong value ({sandbox['hide']!r})", "write a list of absolute paths")
    for key in LIMIT_FIELDS:
        if key in sandbox and sandbox[key] <= 0:
            raise config_error(path, f"sandbox.{key}", f"must be > 0 ({sandbox[key]!r})", "see the commented template")
    kinds = [str(k) for k in SandboxKind]
    if sandbox.get("kind") not in kinds:
        raise config_error(path, "sandbox.kind", f"unknown sandbox {sandbox.get('kind')!r}", f"use one of {', '.join(kinds)}")
    noise = _optional_table(path, d, "noise", _NOISE_FIELDS, "write [noise] with seeds = 3")
    for key, value in noise.items():
        if value <= 0:
            raise config_error(path, f"noise.{key}", f"must be positive ({value!r})", "see the template")
    if noise.get("seeds", 3) < 2:
        raise config_error(path, "noise.seeds", "needs at least 2 seeds to measure a spread", "write seeds = 3")
    from mlipilot.data_actions.config import parse_data_table

    data = parse_data_table(path, _optional_table(path, d, "data", {"label_budget": dict, "reference": str},
                                                  "write [data] with label_budget = { calls = 200 }"))
    return RunConfig(root, run["name"], run["benchmark"], run["branch"], Path(run["store"]), editable,
                     ex["kind"], float(ex["train_timeout_min"]), float(ex["score_timeout_min"]), agent,
                     options,
                     SandboxConfig(SandboxKind(sandbox["kind"]), sandbox.get("image"), tuple(sandbox.get("hide", ())),
                                   Limits(**{k: v for k, v in sandbox.items() if k in LIMIT_FIELDS})),
                     NoiseConfig(int(noise.get("seeds", 3)), float(noise.get("z", 2.0)), float(noise.get("confirm", 3.0)),
                                 int(noise.get("base_seed", 1))), data)
