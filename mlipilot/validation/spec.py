"""The validation spec (``scorecards/<benchmark>.validation.yaml``): which checks, with which
parameters and bounds. Private like the holdout (copied to the store at init, never shown to the
agent); loaded strictly — a typo fails with the file, the field and the nearest valid name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlipilot.errors import config_error
from mlipilot.schema import Field, ListOf, MapOf, Table, read_file
from mlipilot.scorecard.spec import Bound, ReferenceSpec, reference_field  # noqa: F401 -- Bound re-exported
from mlipilot.validation.checks import CHECK_KINDS


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


def _bound(b: dict) -> Bound:
    return Bound(b["max"], b["min"])


BOUND = {"max": Field(float, None), "min": Field(float, None)}


def _schema() -> Table:
    """The validation spec, declared; a check's `params` are declared by its kind (checks.CHECK_KINDS)."""
    check = Table({"name": Field(str, None), "kind": Field(str, choices=CHECK_KINDS), **BOUND,
                   "bounds": Field(MapOf(Table(BOUND)), None, fix="e.g. {C44: {max: 30}}"),
                   "params": Field(dict, None, fix="e.g. {steps: 1500}")},
                  fix="write '- {name: ..., kind: ..., max: ...}'")
    return Table({"name": Field(str, None), "element": Field(str, None, fix="e.g. Cu"),
                  "lattice_a": Field(float, None, fix="e.g. 3.59 (Å)"), "reference": reference_field(),
                  "checks": Field(ListOf(check, nonempty=True), fix="list checks as '- {name: ..., kind: ..., max: ...}'")},
                 missing="list checks as '- {name: ..., kind: ..., max: ...}'", fix="see scorecards/cu_emt.validation.yaml")


def load_validation_spec(path: Path) -> ValidationSpec:
    path = Path(path)
    d, raw = read_file(path, "validation spec not found — write one (see scorecards/cu_emt.validation.yaml)",
                       "scorecards/cu_emt.validation.yaml")
    v = _schema().read(d, path)
    checks, names = [], set()
    for i, c in enumerate(v["checks"]):
        where, kind = f"checks[{i}].", CHECK_KINDS[c["kind"]]
        name = c["name"] if c["name"] is not None else c["kind"]
        if name in names:
            raise config_error(path, where + "name", f"repeated: {name!r}", "give each check a unique name")
        names.add(name)
        params = Table({k: Field(object, default) for k, default in kind.params.items()}).read(
            c["params"] or {}, path, where + "params")
        per = tuple((str(q), _bound(b)) for q, b in (c["bounds"] or {}).items())
        bound = _bound(c)
        if bound.max is None and bound.min is None and not per:
            raise config_error(path, where + "max", "a check needs a bound", f"add 'max:' or 'min:' (the unit is "
                               f"{kind.unit})")
        checks.append(CheckSpec(name, c["kind"], bound, per, tuple(params.items())))
    return ValidationSpec(v["name"] if v["name"] is not None else path.stem, path, v["element"],
                          v["lattice_a"] or None,
                          ReferenceSpec.read(v["reference"]),
                          tuple(checks), hashlib.sha256(raw).hexdigest())
