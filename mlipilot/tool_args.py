"""Tool arguments checked against the tool's JSON schema before anything runs.

An LLM agent's arguments arrive as JSON that Python's json.loads also reads as NaN, Infinity or
1e400 (inf); a tool must see none of that. `check_arguments` validates a call's arguments against
the tool's `parameters` schema and returns a cleaned copy, or raises ArgumentError with one line
naming the argument, the value and what is allowed (the dispatchers answer the agent with it).

Why not the `jsonschema` package: it is installed here only as a dependency of litellm and mcp (not
one of mlipilot's), and it lets NaN through every numeric bound ({"type": "number", "minimum": 0,
"maximum": 1} accepts NaN: NaN < 0 is false). The tools use a small subset of JSON schema, checked
here with the messages the agents read. Supported keywords (others raise at check time, so
a schema never silently goes unchecked): type (object, array, string, integer, number, boolean),
enum, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, items, minItems,
maxItems, anyOf, properties, required, additionalProperties (false or a schema), minProperties,
description.

Beyond JSON schema, for tool calls:
- the top-level object is closed: an argument the schema does not list is refused (naming the
  allowed ones), whether or not the schema says additionalProperties;
- an optional argument given as null counts as left out (small models write null for "default");
- integer: a JSON integer, or a float that is integral and finite (3.0 -> 3); never a bool or a
  numeric string; without a stated range, within +-2**53;
- number: an int or a finite float, never a bool, NaN, Infinity or a value beyond float range;
- string: UTF-8 text without NUL bytes or lone surrogates (never a number turned into a string).
"""

from __future__ import annotations

import json
import math

SUPPORTED = frozenset({"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                       "minLength", "maxLength", "items", "minItems", "maxItems", "anyOf", "properties",
                       "required", "additionalProperties", "minProperties", "description"})
INT_LIMIT = 2**53  # an integer without a stated range stays within what every JSON reader keeps exact


class ArgumentError(ValueError):
    """A tool call's arguments do not fit the tool's schema; the message is one line for the agent."""


class _Bad(Exception):
    def __init__(self, path: str, value, allowed: str):
        super().__init__(path)
        self.path, self.value, self.allowed = path, value, allowed


def check_arguments(tool: str, parameters: dict, args) -> dict:
    """The call's arguments, cleaned (integral floats as ints, nulls of optional arguments dropped),
    or ArgumentError: "bad arguments for <tool>: <argument> = <value>: <what is allowed>. Nothing ran." """
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise ArgumentError(f"bad arguments for {tool}: the arguments must be a JSON object (allowed keys: "
                            f"{', '.join(parameters.get('properties') or {}) or 'none'}). Nothing ran.")
    bad = unsupported_keywords(parameters)
    if bad:  # a schema this module cannot check must not pass as checked (a harness bug, not the agent's)
        raise ValueError(f"the schema of {tool} uses keywords the argument check does not support: {bad}")
    props = parameters.get("properties") or {}
    required = list(parameters.get("required") or [])
    unknown = [k for k in args if k not in props]
    if unknown:
        allowed = ", ".join(props) or "none (call it with {})"
        raise ArgumentError(f"bad arguments for {tool}: unknown argument {_text(unknown[0])} — allowed: {allowed}. "
                            "Nothing ran.")
    out = {}
    try:
        for key, value in args.items():
            if value is None and key not in required:
                continue  # null for an optional argument: its default
            out[key] = _check(props[key], value, key)
    except _Bad as e:
        raise ArgumentError(f"bad arguments for {tool}: {e.path} = {_show(e.value)}: give {e.allowed}. "
                            "Nothing ran.") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise ArgumentError(f"bad arguments for {tool}: missing {', '.join(missing)} (required: "
                            f"{', '.join(required)}; allowed: {', '.join(props)}). Nothing ran.")
    return out


def unsupported_keywords(schema: dict, path: str = "parameters") -> list[str]:
    """Keywords of `schema` (recursively) this validator does not check: [] for every tool schema."""
    if not isinstance(schema, dict):
        return [path]
    bad = [f"{path}.{k}" for k in schema if k not in SUPPORTED]
    for k, sub in (schema.get("properties") or {}).items():
        bad += unsupported_keywords(sub, f"{path}.{k}")
    if isinstance(schema.get("items"), dict):
        bad += unsupported_keywords(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += unsupported_keywords(schema["additionalProperties"], f"{path}{{}}")
    for i, sub in enumerate(schema.get("anyOf") or []):
        bad += unsupported_keywords(sub, f"{path}|{i}")
    return bad


# -- the checks ---------------------------------------------------------------------------------------
def _check(schema: dict, value, path: str):
    if "anyOf" in schema:
        for alternative in schema["anyOf"]:
            try:
                return _check(alternative, value, path)
            except _Bad:
                pass
        raise _Bad(path, value, " or ".join(describe(a) for a in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "integer":
        value = _integer(schema, value, path)
    elif kind == "number":
        value = _number(schema, value, path)
    elif kind == "string":
        value = _string(schema, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _Bad(path, value, describe(schema))
    elif kind == "array":
        value = _array(schema, value, path)
    elif kind == "object":
        value = _object(schema, value, path)
    elif kind is not None:
        raise ValueError(f"tool schema type {kind!r} at {path} is not supported")
    if "enum" in schema and value not in schema["enum"]:
        raise _Bad(path, value, describe(schema))
    return value


def _integer(schema: dict, value, path: str) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(path, value, describe(schema))
    lo, hi = schema.get("minimum", -INT_LIMIT), schema.get("maximum", INT_LIMIT)
    if not lo <= value <= hi or not _exclusive_ok(schema, value):
        raise _Bad(path, value, describe(schema))
    return value


def _number(schema: dict, value, path: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(path, value, describe(schema))
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an int beyond float range
        finite = False
    if not finite:
        raise _Bad(path, value, describe(schema))
    if ("minimum" in schema and value < schema["minimum"]) or ("maximum" in schema and value > schema["maximum"]) \
            or not _exclusive_ok(schema, value):
        raise _Bad(path, value, describe(schema))
    return value


def _exclusive_ok(schema: dict, value) -> bool:
    return (("exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"])
            and ("exclusiveMaximum" not in schema or value < schema["exclusiveMaximum"]))


def _string(schema: dict, value, path: str) -> str:
    if not isinstance(value, str):
        raise _Bad(path, value, describe(schema))
    if "\0" in value or not encodable(value):
        raise _Bad(path, value, "UTF-8 text without NUL bytes or lone surrogates")
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", math.inf):
        raise _Bad(path, value, describe(schema))
    return value


def _array(schema: dict, value, path: str) -> list:
    if not isinstance(value, list) or not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
        raise _Bad(path, value, describe(schema))
    items = schema.get("items")
    return [_check(items, v, f"{path}[{i}]") for i, v in enumerate(value)] if items else list(value)


def _object(schema: dict, value, path: str) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value) \
            or len(value) < schema.get("minProperties", 0):
        raise _Bad(path, value, describe(schema))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    out = {}
    for k, v in value.items():
        sub = f"{path}[{_text(k)}]"
        if not encodable(k) or "\0" in k:
            raise _Bad(sub, k, "keys that are UTF-8 text")
        if k in props:
            out[k] = _check(props[k], v, sub)
        elif extra is False:
            raise _Bad(sub, v, f"only the keys {', '.join(props)}")
        elif isinstance(extra, dict):
            out[k] = _check(extra, v, sub)
        else:
            out[k] = v
    missing = [k for k in schema.get("required") or [] if k not in value]
    if missing:
        raise _Bad(path, value, f"an object with {', '.join(missing)}")
    return out


# -- what the agent reads ---------------------------------------------------------------------------------
def describe(schema: dict) -> str:
    """What a schema allows, in words: 'an integer from 0 to 2147483647', 'a number in (0, 0.5]'."""
    if "anyOf" in schema:
        return " or ".join(describe(a) for a in schema["anyOf"])
    kind = schema.get("type")
    if "enum" in schema:
        return "one of " + ", ".join(_show(v) for v in schema["enum"])
    if kind == "integer":
        return "an integer" + _range(schema, integer=True)
    if kind == "number":
        return "a finite number" + _range(schema, integer=False)
    if kind == "string":
        n = schema.get("maxLength")
        return "a string" + (f" of at most {n} characters" if n is not None else "")
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        size = (f"{lo} " if lo is not None and lo == hi else f"1 to {hi} " if lo == 1 and hi is not None
                else f"at most {hi} " if hi is not None else f"at least {lo} " if lo else "")
        items = schema.get("items")
        return f"a list of {size}" + (f"items, each {describe(items)}" if items else "items")
    if kind == "object":
        extra = schema.get("additionalProperties")
        return "a JSON object" + (f" whose values are each {describe(extra)}" if isinstance(extra, dict) else "")
    return "a JSON value"


def _range(schema: dict, integer: bool) -> str:
    lo_open, hi_open = "exclusiveMinimum" in schema, "exclusiveMaximum" in schema
    lo = schema.get("exclusiveMinimum", schema.get("minimum"))
    hi = schema.get("exclusiveMaximum", schema.get("maximum"))
    if integer and lo is not None and hi is not None and not (lo_open or hi_open):
        return f" from {_num(lo)} to {_num(hi)}"
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {_num(hi)}"
    return ""


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _show(value) -> str:
    """The value as the agent wrote it (JSON; NaN and Infinity by name), short and printable."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    try:
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except ValueError:  # an integer with more digits than Python converts to text
        text = "an integer with thousands of digits"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(key: str) -> str:
    return json.dumps(key, ensure_ascii=True)[:60]


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # lone surrogates
        return False
