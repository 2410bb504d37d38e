"""The validation spec (``scorecards/<benchmark>.validation.yaml``): which checks, with which
parameters and bounds. Private like the holdout (copied to the store at init, never shown to the
agent); loaded strictly — a typo fails with the file, the field and the nearest valid name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlipilot.errors import check_keys, config_error
from mlipilot.scorecard.spec import ReferenceSpec, _reference, read_yaml_mapping
from mlipilot.validation.checks import CHECK_KINDS

TOP_KEYS = ("name", "element", "lattice_a", "reference", "checks")
CHECK_KEYS = ("name", "kind", "max", "min", "bounds", "params")


@dataclass(frozen=True)
class Bound:
    max: float | None = None
    min: float | None = None

    def ok(self, error: float | None) -> bool:
        if error is None or error != error:
            return False
        return (self.max is None or error <= self.max) and (self.min is None or error >= self.min)

    def __str__(self) -> str:
        parts = ([f"≥ {self.min:g}"] if self.min is not None else []) + ([f"≤ {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    kind: str
    bound: Bound
    bounds: tuple[tuple[str, Bound], ...]  # per-quantity overrides
    params: tuple[tuple[str, Any], ...]  # merged with the kind's defaults

    def bound_for(self, quantity: str) -> Bound:
        return dict(self.bounds).get(quantity, self.bound)


@dataclass(frozen=True)
class ValidationSpec:
    name: str
    path: Path
    element: str | None
    lattice_a: float | None
    reference: ReferenceSpec | None
    checks: tuple[CheckSpec, ...]
    sha256: str


def _bound(d: dict, path: Path, where: str) -> Bound:
    values = {}
    for key in ("max", "min"):
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise config_error(path, where + key, f"expected a number, got {v!r}", "write a number")
        values[key] = float(v) if v is not None else None
    return Bound(values["max"], values["min"])


def load_validation_spec(path: Path) -> ValidationSpec:
    path = Path(path)
    d, raw = read_yaml_mapping(path, TOP_KEYS, "validation spec not found — write one (see "
                               "scorecards/cu_emt.validation.yaml)", "scorecards/cu_emt.validation.yaml")
    if not isinstance(d.get("checks"), list) or not d["checks"]:
        raise config_error(path, "checks", "missing or empty", "list checks as '- {name: ..., kind: ..., max: ...}'")
    checks, names = [], set()
    for i, c in enumerate(d["checks"]):
        where = f"checks[{i}]."
        if not isinstance(c, dict):
            raise config_error(path, where[:-1], "expected a mapping", "write '- {name: ..., kind: ..., max: ...}'")
        check_keys(c, CHECK_KEYS, path, where)
        kind = c.get("kind")
        if kind not in CHECK_KINDS:
            import difflib

            near = difflib.get_close_matches(str(kind), list(CHECK_KINDS), n=1)
            raise config_error(path, where + "kind", f"unknown check kind {kind!r}",
                               (f"did you mean '{near[0]}'? " if near else "") + f"use one of {', '.join(CHECK_KINDS)}")
        name = c.get("name", kind)
        if not isinstance(name, str) or name in names:
            raise config_error(path, where + "name", f"missing, not a string or repeated: {name!r}", "give each check a unique name")
        names.add(name)
        params = c.get("params", {}) or {}
        if not isinstance(params, dict):
            raise config_error(path, where + "params", f"expected a mapping, got {params!r}", "e.g. {steps: 1500}")
        check_keys(params, CHECK_KINDS[kind].params, path, where + "params.")
        bound = _bound(c, path, where)
        overrides = c.get("bounds", {}) or {}
        if not isinstance(overrides, dict):
            raise config_error(path, where + "bounds", "expected {quantity: {max: ...}}", "e.g. {C44: {max: 30}}")
        per = []
        for q, b in overrides.items():
            if not isinstance(b, dict):
                raise config_error(path, f"{where}bounds.{q}", "expected {max: ...} or {min: ...}", "e.g. {max: 30}")
            check_keys(b, ("max", "min"), path, f"{where}bounds.{q}.")
            per.append((str(q), _bound(b, path, f"{where}bounds.{q}.")))
        if bound.max is None and bound.min is None and not per:
            raise config_error(path, where + "max", "a check needs a bound", "add 'max:' or 'min:' (the unit is "
                               f"{CHECK_KINDS[kind].unit})")
        checks.append(CheckSpec(name, kind, bound, tuple(per), tuple({**CHECK_KINDS[kind].params, **params}.items())))
    element, lattice = d.get("element"), d.get("lattice_a")
    if element is not None and not isinstance(element, str):
        raise config_error(path, "element", f"expected a symbol, got {element!r}", "e.g. Cu")
    if lattice is not None and (isinstance(lattice, bool) or not isinstance(lattice, (int, float))):
        raise config_error(path, "lattice_a", f"expected a number in Å, got {lattice!r}", "e.g. 3.59")
    return ValidationSpec(str(d.get("name", path.stem)), path, element, float(lattice) if lattice else None,
                          _reference(d.get("reference"), path, "reference"), tuple(checks), hashlib.sha256(raw).hexdigest())
