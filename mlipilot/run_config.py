"""mlipilot.toml: the run directory's harness-owned settings, validated field by field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlipilot.agent_specs import agent_kind
from mlipilot.errors import config_error
from mlipilot.executors import (
    ExecutorKind,
    UnknownExecutor,
    executor_names,
    get_executor,
    registered_kinds,
)
from mlipilot.sandbox import LIMIT_FIELDS, SANDBOXES, Limits, SandboxConfig, SandboxKind
from mlipilot.registry import UnknownName
from mlipilot.schema import OMIT, Field, Table, read_file

from mlipilot.data_config import DATA_TABLE, EXAMPLE as DATA_EXAMPLE, DataConfig, data_config

CONFIG_NAME = "mlipilot.toml"
DEVICES = ("auto", "cpu", "cuda")  # where train.py trains (resolved on the node by jobs.resolve_device)
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
# device = "auto"           # where train.py trains: auto (cuda where the node has one) | cpu | cuda; scoring stays on CPU
@EXECUTOR_OPTIONS@
[sandbox]                   # where train/train.py runs: bwrap | apptainer | none (see README, Threat model)
kind = "{sandbox}"
# image = "/path/to/env.sif"   # apptainer only: an image with your Python environment and MLIPilot
# hide = ["/data/my_holdout_copies"]   # more paths train.py must not see (the store and the holdout's source are hidden already)
# limits of each sandboxed job (defaults shown); a job over one fails with the limit named
# processes = 512             # tasks (threads count); as root it needs a writable pids cgroup
# memory_gb = 16              # per process (heap and anonymous memory), /tmp and /dev/shm included
# file_gb = 2                 # the largest file it may write
# output_gb = 4               # its output folder, measured after the job
# tmp_mb = 512                # its private /tmp (RAM-backed)
# shm_mb = 256                # its private /dev/shm (RAM-backed); the rest of /dev is read-only
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
    data: DataConfig | None = None  # [data] (mlipilot.data_config); None: its defaults
    device: str = "auto"  # [executor] device: where training runs (jobs.Device), resolved on the node


RESTORE = f"restore it with `git checkout -- {CONFIG_NAME}`"
TEMPLATE_FIX = "see the commented template"
NUMBER = (int, float)


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be > 0 ({v!r})"


def _editable(entries: list) -> str | None:
    for e in entries:
        if not isinstance(e, str) or e.startswith("/") or ".." in Path(e).parts or not e.strip("/"):
            return f"bad entry {e!r}"
    return None


def _executor(name: str) -> tuple[str, str] | None:
    try:
        get_executor(name)
    except UnknownExecutor as e:
        return e.problem, e.fix
    return None


def _not_a_key(value: object) -> str | None:
    return "looks like an API key" if isinstance(value, str) and value.startswith("sk-") else None


def _agent(spec: str) -> str | tuple[str, str] | None:
    if problem := _not_a_key(spec):
        return problem
    try:
        agent_kind(spec, where="")  # the form only: a user's class is imported when a run starts
    except UnknownName as e:
        return e.problem, e.fix
    return None


def _optional(table: Table) -> Field:
    """An optional table: absent, it reads as an empty one (its defaults)."""
    return Field(table, table.read({}, ""))


def _schema(kinds: list[ExecutorKind]) -> Table:
    """mlipilot.toml, declared; the executor kinds bring their own option fields (read whatever the kind:
    `--executor` may switch to another), beside `kind` in [executor] or in a table of their own."""
    options: dict[str, dict[str, Field]] = {}
    for kind in kinds:
        label = kind.label or kind.name
        fix = (f"see the commented {label} keys in the template" if kind.config_section == "executor"
               else f"see the {label} executor's options")
        options.setdefault(kind.config_section, {}).update(
            {key: Field(t, OMIT, fix=fix) for key, t in kind.config_fields.items()})
    key_fix = "put the key in an environment variable and name it with api_key_env"
    agent = {key: Field(t, OMIT, fix=key_fix if t is str else TEMPLATE_FIX, check=_not_a_key) for key, t in {
        "model": str, "api_base": str, "api_key_env": str, "iterations": int, "llm_calls_per_iteration": int,
        "max_tokens": int, "max_cost": NUMBER, "max_wall_min": NUMBER, "seed": int}.items()}
    agent["model"] = Field(str, OMIT, fix=key_fix, check=_agent)
    return Table({
        "run": Field(Table({"name": Field(str), "benchmark": Field(str), "branch": Field(str), "store": Field(str),
                            "editable": Field(list, fix="use relative folders such as 'train/'", check=_editable)},
                           missing=RESTORE)),
        "executor": Field(Table({"kind": Field(str, check=_executor),
                                 "train_timeout_min": Field(NUMBER, fix="give minutes, e.g. 30", check=_positive),
                                 "score_timeout_min": Field(NUMBER, fix="give minutes, e.g. 30", check=_positive),
                                 "device": Field(str, "auto", choices=DEVICES),
                                 **options.pop("executor", {})}, missing=RESTORE)),
        "sandbox": _optional(Table({
            "kind": Field(str, "bwrap", choices=SANDBOXES), "image": Field(str, OMIT),
            "hide": Field(list, OMIT, fix="write a list of absolute paths",
                          check=lambda h: None if all(isinstance(x, str) and Path(x).is_absolute() for x in h)
                          else f"wrong value ({h!r})"),
            **{key: Field(NUMBER, OMIT, fix=TEMPLATE_FIX, check=_positive) for key in LIMIT_FIELDS}}, fix=TEMPLATE_FIX)),
        "noise": _optional(Table({
            "seeds": Field(int, 3, fix="write seeds = 3", check=lambda n: None if n >= 2 else
                           "needs at least 2 seeds to measure a spread"),
            "z": Field(NUMBER, 2.0, fix="see the template", check=_positive),
            "confirm": Field(NUMBER, 3.0, fix="see the template", check=_positive),
            "base_seed": Field(int, 1, fix="see the template", check=_positive)}, fix="write [noise] with seeds = 3")),
        "agent": _optional(Table(agent, fix='write [agent] with model = "expert"')),
        "data": Field(DATA_TABLE, OMIT, fix=DATA_EXAMPLE),
        **{section: _optional(Table(fields)) for section, fields in options.items()},
    }, missing=RESTORE)


def load_run_config(root: Path) -> RunConfig:
    root = Path(root).resolve()
    path = root / CONFIG_NAME
    d, _ = read_file(path, "not found — run this inside a run directory made by `mlipilot init`, or pass --run DIR",
                     "the template", fmt="toml", restore=RESTORE)
    kinds = registered_kinds()
    name = d.get("executor", {}).get("kind") if isinstance(d.get("executor"), dict) else None
    if isinstance(name, str) and name not in EXECUTORS:  # named by dotted path: its option fields count too
        try:
            kinds.append(get_executor(name))
        except UnknownExecutor as e:
            raise config_error(path, "executor.kind", e.problem, e.fix) from None
    v = _schema(kinds).read(d, path)
    run, ex, sandbox, noise = v["run"], v["executor"], v["sandbox"], v["noise"]
    options = {key: value for section, table in v.items() if section not in ("run", "sandbox", "noise", "agent", "data")
               for key, value in table.items() if key not in ("kind", "train_timeout_min", "score_timeout_min", "device")}
    limits = Limits(**{k: v for k, v in sandbox.items() if k in LIMIT_FIELDS})
    if limits.ram_disks_gb >= limits.memory_gb:
        raise config_error(path, "sandbox.memory_gb", f"wrong value ({limits.memory_gb:g})",
                           f"it counts /tmp ({limits.tmp_mb} MB) and /dev/shm ({limits.shm_mb} MB) too: give more than "
                           f"{limits.ram_disks_gb:.2f}, or lower tmp_mb/shm_mb")
    return RunConfig(root, run["name"], run["benchmark"], run["branch"], Path(run["store"]), tuple(run["editable"]),
                     ex["kind"], float(ex["train_timeout_min"]), float(ex["score_timeout_min"]), v["agent"], options,
                     SandboxConfig(SandboxKind(sandbox["kind"]), sandbox.get("image"), tuple(sandbox.get("hide", ())),
                                   limits),
                     NoiseConfig(noise["seeds"], float(noise["z"]), float(noise["confirm"]), noise["base_seed"]),
                     data=data_config(v.get("data")), device=ex["device"])
