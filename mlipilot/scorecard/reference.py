"""Reference calculators for the force check along MD: any ASE calculator by its registry name
(``emt``, ``lj``, ``morse``, ``eam``, ... — ASE's own ``get_calculator_class``) or a user's own
class by dotted path (``package.module:Class`` or ``package.module.Class``)."""

from __future__ import annotations

import importlib

from ase.calculators.calculator import get_calculator_class
from ase.calculators.names import names as ASE_CALCULATORS


def calculator_class(name: str) -> type:
    """The calculator class for a name; ValueError/ImportError with what is known otherwise."""
    if name in ASE_CALCULATORS:
        return get_calculator_class(name)
    if "." not in name and ":" not in name:
        import difflib

        near = difflib.get_close_matches(name, ASE_CALCULATORS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown reference calculator {name!r}{hint}; ASE knows {', '.join(ASE_CALCULATORS)}")
    module, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"cannot import {name!r}: {e}") from None
    if not isinstance(cls, type):
        raise ValueError(f"{name!r} is not a class")
    return cls
