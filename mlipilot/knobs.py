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

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlipilot.errors import MLIPilotError, check_keys
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


def parse_knobs(data: Any, where: str, with_mace: bool = True) -> dict[str, Knob]:
    """Validate a knobs.yaml mapping; one line per problem naming the file, the field and the fix."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MLIPilotError(f"{where}: must be a mapping option -> {{choices, range, acts_on, doc}}")
    known = mace_options() if with_mace else {}
    knobs = {}
    for name, spec in data.items():
        field = f"{where}: {name}"
        if name in HARNESS_OWNED:
            raise MLIPilotError(f"{field}: set by the harness or train.py on every training — remove it")
        if isinstance(spec, list):
            spec = {"choices": spec}
        if not isinstance(spec, dict):
            raise MLIPilotError(f"{field}: must be a list of choices or a mapping with {', '.join(KNOB_KEYS)}")
        check_keys(spec, KNOB_KEYS, where, f"{name}.")
        choices = tuple(spec["choices"]) if spec.get("choices") is not None else None
        if choices is not None and not choices:
            raise MLIPilotError(f"{field}.choices: empty — list at least one value or drop the key")
        if "type" in spec:
            if spec["type"] not in TYPES:
                raise MLIPilotError(f"{field}.type: {spec['type']!r} — use one of {', '.join(TYPES)}")
            kind = TYPES[spec["type"]]
        elif name in known:
            kind = known[name][0]
        elif with_mace and not choices:
            near = difflib.get_close_matches(name, list(known), n=1)
            raise MLIPilotError(f"{field}: not an option of mace-torch's training parser"
                                + (f" — did you mean '{near[0]}'?" if near else "") + " (or give its type:)")
        elif choices is None and isinstance(spec.get("range"), list):
            kind = int if all(isinstance(x, int) for x in spec["range"]) else float
        else:
            kind = _infer_type(choices)
        rng = spec.get("range")
        if rng is not None:
            if (not isinstance(rng, list) or len(rng) != 2 or not all(isinstance(x, (int, float)) for x in rng)
                    or rng[0] > rng[1]):
                raise MLIPilotError(f"{field}.range: {rng!r} — write [min, max] with min <= max")
            if kind not in (int, float):
                raise MLIPilotError(f"{field}.range: a range needs a numeric option; {name} is {kind.__name__}")
        acts_on = spec.get("acts_on") or []
        if isinstance(acts_on, str):
            acts_on = [acts_on]
        for m in acts_on:
            if parse_metric(str(m)) is None:
                raise MLIPilotError(f"{field}.acts_on: {m!r} is not a metric name — {unknown_metric_fix(str(m))}")
        knob = Knob(name, kind, choices, tuple(rng) if rng else None, tuple(acts_on), str(spec.get("doc") or ""),
                    known.get(name, (None, None))[1])
        for c in choices or ():
            try:
                knob.coerce(c)
            except ValueError as e:
                raise MLIPilotError(f"{field}.choices: {e}") from None
        knobs[name] = knob
    return knobs


def load_knobs(path: Path, with_mace: bool = True) -> dict[str, Knob]:
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MLIPilotError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_knobs(data, str(path), with_mace)


def option(name: str, knobs: dict[str, Knob]) -> Knob:
    """The knob `set_options` checks a value against: declared in knobs.yaml, else any option of
    mace-torch's parser (typed by it); harness-owned and unknown names fail with the nearest names."""
    if name in HARNESS_OWNED:
        raise ValueError(f"{name}: set by the harness or train.py on every training; it cannot be changed")
    if name in knobs:
        return knobs[name]
    known = mace_options()
    if name in known:
        kind, choices = known[name]
        return Knob(name, kind, mace_choices=choices)
    near = difflib.get_close_matches(name, list(dict.fromkeys([*knobs, *known])), n=3)
    raise ValueError(f"{name}: no such option" + (f" — did you mean {', '.join(repr(n) for n in near)}?" if near
                                                  else f"; the workspace declares {', '.join(knobs)}"))


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
    return problems
