"""The options a workspace declares in `knobs.yaml`: what `set_options` accepts (type, range),
what the random and optuna baselines sample (choices), and which scorecard metrics each option is
documented to act on (shown beside what fails — documentation, not a prescription).

    energy_weight:
      choices: [1.0, 10.0, 100.0, 1000.0]   # sampled by random/optuna (optional)
      range: [0.0, 1.0e+6]                  # set_options refuses values outside it (optional)
      acts_on: [energy_rmse]                # scorecard metrics (optional)
      doc: weight of the energy term in the loss

A bare list (`energy_weight: [1.0, 10.0]`) is the older form: choices only. Types come from
mace-torch's own argument parser when it knows the option, else from the choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlipilot.errors import MLIPilotError, config_error
from mlipilot.registry import nearest
from mlipilot.schema import OMIT, Field, Table, read_file
from mlipilot.scorecard.metrics import parse_metric, unknown_metric_fix

KNOB_KEYS = ("choices", "range", "acts_on", "doc", "type")
TYPES = {"float": float, "int": int, "bool": bool, "str": str}
# set by train.py or the harness on every training: a value in config.yaml would be overridden or
# would point training at other data, so set_options refuses them
HARNESS_OWNED = ("seed", "train_file", "valid_file", "test_file", "energy_key", "forces_key", "stress_key", "device",
                 "model_dir", "checkpoints_dir", "results_dir", "log_dir", "downloads_dir", "work_dir", "name",
                 "config", "distributed", "log_level", "restart_latest", "save_cpu", "wandb")


@dataclass(frozen=True)
class Knob:
    name: str
    type: type
    choices: tuple | None = None
    range: tuple[float, float] | None = None
    acts_on: tuple[str, ...] = ()
    doc: str = ""
    mace_choices: tuple | None = None  # the values mace-torch's parser allows, when it restricts them

    def acts_on_metric(self, metric: str) -> bool:
        ref = parse_metric(metric)
        return metric in self.acts_on or (ref is not None and ref.quantity in self.acts_on)

    def coerce(self, value: Any) -> Any:
        """The value as this option's type, or ValueError with what is wrong and what would do."""
        v = _coerce(self.type, value, self.name)
        allowed = self.mace_choices
        if allowed is not None and v not in allowed:
            raise ValueError(f"{self.name}: {value!r} is not one of {list(allowed)}")
        if self.range is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, hi = self.range
            if not lo <= v <= hi:
                raise ValueError(f"{self.name}: {v!r} is outside the range [{lo:g}, {hi:g}] knobs.yaml declares")
        return v


def _coerce(kind: type, value: Any, name: str) -> Any:
    bad = ValueError(f"{name}: expected {kind.__name__}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise bad
    if kind in (int, float):
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise bad from None
        if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise bad
        if kind is int:
            if float(value) != int(value):
                raise ValueError(f"{name}: expected an integer, got {value!r}")
            return int(value)
        return float(value)
    if isinstance(value, dict):  # E0s and other dict-valued string options: {29: -3.5}
        try:
            return repr({_int_key(k): float(v) for k, v in value.items()})
        except (TypeError, ValueError):
            raise bad from None
    if isinstance(value, (list, dict)) or value is None:
        raise bad
    return str(value)


def _int_key(k):
    return int(k) if isinstance(k, str) and k.strip().isdigit() else k


@functools.lru_cache(maxsize=1)
def mace_options() -> dict[str, tuple[type, tuple | None]]:
    """Every option of mace-torch's training parser: name -> (type, choices or None)."""
    import mace  # noqa: F401  (before e3nn)
    from mace.tools import build_default_arg_parser

    out = {}
    for action in build_default_arg_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        if type(action).__name__ in ("_StoreTrueAction", "_StoreFalseAction"):
            kind = bool
        elif action.type in (int, float, str):
            kind = action.type
        elif action.type is None:
            kind = str
        else:  # mace's own converters (e.g. str2bool): booleans in practice
            kind = bool if "bool" in getattr(action.type, "__name__", "") else str
        out[action.dest] = (kind, tuple(action.choices) if action.choices else None)
    return out


def _infer_type(choices: tuple | None) -> type:
    if not choices:
        return str
    if all(isinstance(c, bool) for c in choices):
        return bool
    if all(isinstance(c, int) and not isinstance(c, bool) for c in choices):
        return int
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return float
    return str


def _range(r: list) -> str | None:
    ok = len(r) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in r) and r[0] <= r[1]
    return None if ok else f"{r!r} is not [min, max]"


def _metrics(names: list) -> tuple[str, str] | None:
    for m in names:
        if parse_metric(str(m)) is None:
            return f"{m!r} is not a metric name", unknown_metric_fix(str(m))
    return None


KNOB = Table({
    "choices": Field(list, None, fix="list at least one value or drop the key",
                     check=lambda c: None if c else "empty"),
    "range": Field(list, None, fix="write [min, max] with min <= max", check=_range),
    "acts_on": Field(list, [], before=lambda v: [v] if isinstance(v, str) else v, check=_metrics),
    "doc": Field(object, None), "type": Field(str, OMIT, choices=tuple(TYPES))},
    fix="write a list of choices or a mapping with " + ", ".join(KNOB_KEYS))


def parse_knobs(data: Any, where: str, with_mace: bool = True) -> dict[str, Knob]:
    """Validate a knobs.yaml mapping; one line per problem naming the file, the field and the fix."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MLIPilotError(f"{where}: must be a mapping option -> {{choices, range, acts_on, doc}}")
    known = mace_options() if with_mace else {}
    knobs = {}
    for name, spec in data.items():
        if name in HARNESS_OWNED:
            raise config_error(where, name, "set by the harness or train.py on every training", "remove it")
        spec = KNOB.read({"choices": spec} if isinstance(spec, list) else spec, where, str(name))
        choices = tuple(spec["choices"]) if spec["choices"] is not None else None
        rng = spec["range"]
        if "type" in spec:
            kind = TYPES[spec["type"]]
        elif name in known:
            kind = known[name][0]
        elif with_mace and not choices:
            near = nearest(name, list(known))
            raise config_error(where, name, "not an option of mace-torch's training parser",
                               (f"did you mean '{near}'? " if near else "") + "(or give its type:)")
        elif choices is None and rng is not None:
            kind = int if all(isinstance(x, int) for x in rng) else float
        else:
            kind = _infer_type(choices)
        if rng is not None and kind not in (int, float):
            raise config_error(where, f"{name}.range", f"a range needs a numeric option; {name} is {kind.__name__}",
                               "drop the range")
        knob = Knob(name, kind, choices, tuple(rng) if rng else None, tuple(spec["acts_on"]), str(spec["doc"] or ""),
                    known.get(name, (None, None))[1])
        for c in choices or ():
            try:
                knob.coerce(c)
            except ValueError as e:
                raise config_error(where, f"{name}.choices", str(e), "fix the value") from None
        knobs[name] = knob
    return knobs


def load_knobs(path: Path, with_mace: bool = True) -> dict[str, Knob]:
    path = Path(path)
    if not path.is_file():
        return {}
    data, _ = read_file(path, "not found", "workspace_template/generic/knobs.yaml", empty_ok=True)
    return parse_knobs(data, str(path), with_mace)


def option(name: str, knobs: dict[str, Knob]) -> Knob:
    """The knob `set_options` checks a value against: declared in knobs.yaml, else any option of
    mace-torch's parser (typed by it); harness-owned and unknown names fail with the nearest names."""
    if name in HARNESS_OWNED:
        raise ValueError(f"{name}: set by the harness or train.py on every training; it cannot be changed")
    if name in knobs:
        knob = knobs[name]
        if knob.type is str and knob.mace_choices is None:  # knobs read without mace: its parser's choices bind
            allowed = mace_options().get(name, (None, None))[1]
            knob = dataclasses.replace(knob, mace_choices=allowed) if allowed else knob
        return knob
    known = mace_options()
    if name in known:
        kind, choices = known[name]
        return Knob(name, kind, mace_choices=choices)
    near = difflib.get_close_matches(name, list(dict.fromkeys([*knobs, *known])), n=3)
    raise ValueError(f"{name}: no such option" + (f" — did you mean {', '.join(repr(n) for n in near)}?" if near
                                                  else f"; the workspace declares {', '.join(knobs)}"))


def allowed_values(knob: Knob) -> tuple | None:
    """The closed set of values an option takes, when it has one: mace-torch's parser's choices, else
    the choices knobs.yaml declares for a string or boolean option (numbers take their range)."""
    if knob.mace_choices:
        return tuple(knob.mace_choices)
    if knob.type is bool:
        return (False, True)
    if knob.type is str and knob.choices:
        return tuple(knob.choices)
    return None


def describe_knob(knob: Knob, limit: int = 240, first_clause: bool = False, with_values: bool = True) -> str:
    """How an option is shown to an agent (tool descriptions, the brief): the values it takes first,
    then its documentation, marked as prose — a doc that mentions values ("Agnesi/Soft keep short
    distances repulsive") must never read as one to copy. `first_clause`: the doc up to its first
    "; " or " (" only (what a schema sent with every call can afford; knobs.yaml has the rest).
    `with_values=False`: the prose alone, for a schema whose enum already lists the values before it."""
    closed = allowed_values(knob)
    if closed is not None:
        values = "one of " + ", ".join(json.dumps(v) for v in closed)
    else:
        kind = {int: "an integer", float: "a number", str: "a string"}.get(knob.type, "a value")
        rng = f" from {knob.range[0]:g} to {knob.range[1]:g}" if knob.range else ""
        examples = f" (e.g. {', '.join(json.dumps(c) for c in knob.choices)})" if knob.choices else ""
        values = kind + rng + examples
    doc = knob.doc
    if first_clause:
        for sep in ("; ", " ("):
            doc = doc.split(sep, 1)[0]
    if not with_values:
        values = ""
    text = values + (f"{'; ' if values else ''}what it does: {doc}" if doc else "")  # ASCII: JSON escapes the rest
    if len(text) <= limit:
        return text
    cut = text[:limit - 3]
    for sep in ("; ", " (", ", ", " "):  # end the prose at a clause, never inside the values
        i = cut.rfind(sep)
        if i > len(values) + len("; what it does:"):
            return cut[:i] + "..."
    return values


def render(value: Any) -> str:
    """A value as one YAML scalar for config.yaml."""
    if isinstance(value, str):
        return json.dumps(value) if value != value.strip() or not value or _needs_quotes(value) else value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _needs_quotes(s: str) -> bool:
    try:
        return not isinstance(yaml.safe_load(s), str) or ":" in s or s.startswith(("{", "[", "#", "&", "*", "!"))
    except yaml.YAMLError:
        return True



def config_with(text: str, updates: dict[str, Any]) -> str:
    """config.yaml text with each key rewritten in place (comments and order kept); absent keys appended."""
    lines = text.splitlines()
    for key, value in updates.items():
        rendered = f"{key}: {render(value)}"
        for i, line in enumerate(lines):
            if line.split(":", 1)[0].strip() == key and not line.lstrip().startswith("#") and not line[:1].isspace():
                lines[i] = rendered
                break
        else:
            lines.append(rendered)
    return "\n".join(lines) + "\n"


STRESS_LOSSES = ("stress", "huber", "universal")  # mace-torch's losses with a stress term (tools/scripts_utils.py)


def ineffective_options(config: dict, keys=None) -> list[str]:
    """Options that would do nothing in this configuration, each with the option that enables it — a knob
    that silently does nothing is a trap (stress_weight: 100 under mace-torch's default `weighted` loss
    left every metric identical to the digit). `keys`: only these (what an edit sets); None: all."""
    loss = str(config.get("loss", "weighted"))
    swa = config.get("swa") is True or str(config.get("swa")).lower() == "true"
    out = []

    def nonzero(key: str) -> bool:
        try:
            return float(config.get(key) or 0) != 0
        except (TypeError, ValueError):
            return False

    for key in (keys if keys is not None else config):
        key = str(key)
        if key == "stress_weight" and nonzero(key) and loss not in STRESS_LOSSES:
            out.append(f"stress_weight has no effect under loss: {loss} (mace-torch's {loss!r} loss has no stress "
                       f"term) — also set loss: stress (or {', '.join(STRESS_LOSSES[1:])}) to train on stress")
        elif key == "virials_weight" and nonzero(key) and loss != "virials":
            out.append(f"virials_weight has no effect under loss: {loss} — also set loss: virials")
        elif key in ("start_swa", "swa_energy_weight", "swa_forces_weight", "swa_stress_weight", "swa_lr") \
                and key in config and not swa:
            out.append(f"{key} has no effect without swa: true — also set swa: true (the second stage)")
    return out


def config_problems(text: str, knobs: dict[str, Knob]) -> list[str]:
    """What mace-torch would refuse in a config.yaml text (unknown options, wrong types, values
    outside knobs.yaml's ranges): caught when the file is edited, not by a failed training."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [f"not valid YAML ({str(e).splitlines()[0]})"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["must be a mapping of mace-torch options (option: value, one per line)"]
    problems = []
    for key, value in data.items():
        if str(key) in HARNESS_OWNED:
            continue  # train.py and the harness override these on the command line
        try:
            option(str(key), knobs).coerce(value)
        except ValueError as e:
            problems.append(str(e))
    return problems + ineffective_options(data)
