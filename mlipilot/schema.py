"""The one schema mechanism for MLIPilot's configuration files (scorecard, validation spec,
benchmark.yaml, knobs.yaml, mlipilot.toml): a file's shape declared as `Table`s of `Field`s.

`Table.read` checks a parsed mapping against its declaration and returns a plain dict with every
declared key (defaults filled in), so a loader only builds its typed records and checks what spans
fields. Every way a value can be wrong is one `MLIPilotError` line naming the file, the field (a
dotted path: ``stability.runs[0].steps``) and the fix; an unknown key or name gets the nearest valid
one. Types are strict: a bool is never a number, an int is accepted (and converted) where a float is
declared, None only where declared.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlipilot.errors import MLIPilotError, check_keys, config_error
from mlipilot.registry import Registry, UnknownName, nearest


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Sentinel("REQUIRED")  # the key must be given
OMIT = _Sentinel("OMIT")  # optional, and left out of the result when not given
NoneType = type(None)


@dataclass(frozen=True)
class ListOf:
    """A list whose items are each of `item` (a type, a tuple of types, a Table or ListOf)."""
    item: Any
    nonempty: bool = False


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (quantities, option names) whose values are each of `value`."""
    value: Any


@dataclass(frozen=True)
class Field:
    """One key: its kind (a type, a tuple of types, a Table, ListOf or MapOf), its default (REQUIRED,
    OMIT or a value; a default of None also accepts null), and how to fix a wrong value. `before` normalises a short form first (a number
    for [start, end], a name for {name: ...}); `choices` (a Registry or names) refuses an unknown name
    with the nearest one; `check` returns what else is wrong with a well-typed value (the problem, or (problem, fix)), or None."""
    kind: Any = object
    default: Any = REQUIRED
    fix: str = ""
    before: Callable[[Any], Any] | None = None
    choices: Registry | tuple[str, ...] | None = None
    check: Callable[[Any], str | tuple[str, str] | None] | None = None  # the problem, or (problem, fix)


def _type_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        names = [_type_name(k) for k in kind if k is not NoneType]
        return " or ".join(dict.fromkeys(names)) or "null"
    if isinstance(kind, Table | MapOf) or kind is dict:
        return "a mapping"
    if isinstance(kind, ListOf) or kind is list:
        return "a list"
    return kind.__name__


def _is(value: Any, kind: Any) -> bool:
    """Whether value is of one of the plain types `kind` names (bool only where bool is named)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if kinds == (object,):
        return True
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    plain = tuple(k for k in kinds if isinstance(k, type))
    return isinstance(value, plain)


@dataclass(frozen=True)
class Table:
    """A mapping with declared keys. `missing` is the fix for a missing required key (``{key}`` is
    replaced by its name); `fix` the fix for a value that is not a mapping."""
    fields: Mapping[str, Field]
    missing: str = "add '{key}:'"
    fix: str = "write a mapping"
    extra: tuple[str, ...] = field(default=())  # keys allowed beside the fields, read by the loader itself

    def read(self, value: Any, path: object, where: str = "") -> dict[str, Any]:
        """`value` checked against the declaration: every declared key (OMIT ones only when given),
        each converted (ints to floats where a float is declared, nested tables read)."""
        if not isinstance(value, dict):
            raise config_error(path, where or "(top level)", f"expected a mapping, got {value!r}", self.fix)
        prefix = f"{where}." if where else ""
        check_keys(value, [*self.fields, *self.extra], path, prefix)
        out = {}
        for key, f in self.fields.items():
            if key not in value:
                if f.default is REQUIRED:
                    raise config_error(path, prefix + key, "missing", self.missing.replace("{key}", key))
                if f.default is not OMIT:
                    out[key] = f.default
                continue
            out[key] = read_value(value[key], f, path, prefix + key)
        for key in self.extra:
            if key in value:
                out[key] = value[key]
        return out


def read_value(value: Any, f: Field, path: object, where: str) -> Any:
    """One field's value, checked and converted (see Field)."""
    if value is None and f.default is None:  # a default of None: null is the same as leaving the key out
        return None
    if f.before is not None:
        value = f.before(value)
    value = _typed(value, f.kind, path, where, f.fix)
    if f.choices is not None and value is not None:
        if isinstance(f.choices, Registry):
            try:
                f.choices.resolve(value)
            except UnknownName as e:
                raise config_error(path, where, e.problem, e.fix) from None
        elif value not in f.choices:
            near = nearest(value, list(f.choices))
            known = ", ".join(map(str, f.choices))
            raise config_error(path, where, f"unknown {where.rsplit('.', 1)[-1]} {value!r}",
                               f"did you mean {near!r}? (use one of {known})" if near else f"use one of {known}")
    if f.check is not None and (problem := f.check(value)):
        problem, fix = problem if isinstance(problem, tuple) else (problem, f.fix or "see the documented example")
        raise config_error(path, where, problem, fix)
    return value


def _typed(value: Any, kind: Any, path: object, where: str, fix: str) -> Any:
    if isinstance(kind, Table):
        return kind.read(value, path, where)
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise config_error(path, where, f"expected a list, got {value!r}", fix or "write a list")
        if kind.nonempty and not value:
            raise config_error(path, where, "missing or empty", fix or "list at least one")
        return [_typed(v, kind.item, path, f"{where}[{i}]", fix) for i, v in enumerate(value)]
    if isinstance(kind, MapOf):
        if not isinstance(value, dict):
            raise config_error(path, where, f"expected a mapping, got {value!r}", fix or "write a mapping")
        return {k: _typed(v, kind.value, path, f"{where}.{k}", fix) for k, v in value.items()}
    if not _is(value, kind):
        want = _type_name(kind)
        raise config_error(path, where, f"expected {want}, got {value!r}",
                           fix or (f"write {want}" if want.startswith("a ") else f"write a {want}"))
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and int not in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def read_file(path: Path, missing: str, example: str, fmt: str = "yaml",
              restore: str = "fix the syntax", empty_ok: bool = False) -> tuple[dict, bytes]:
    """A YAML (or TOML) file's top-level mapping and its bytes (for the hash): a missing file, bad
    syntax or a non-mapping is one line with the file (and line) and the fix. `empty_ok`: an empty
    file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise MLIPilotError(f"{path}: {missing}")
    raw = path.read_bytes()
    if fmt == "toml":
        try:
            d = tomllib.loads(raw.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise MLIPilotError(f"{path}: not valid TOML ({e}) — {restore}") from None
    else:
        try:
            d = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise MLIPilotError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)}) — {restore}") from None
    if d is None and empty_ok:
        d = {}
    if not isinstance(d, dict):
        raise MLIPilotError(f"{path}: expected a mapping at the top level — see {example}")
    return d, raw
