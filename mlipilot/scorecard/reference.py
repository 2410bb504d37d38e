"""Reference calculators for the force check along MD: any ASE calculator by its registry name
(``emt``, ``lj``, ``morse``, ``eam``, ... — ASE's own ``get_calculator_class``) or a user's own
class by dotted path (``package.module:Class`` or ``package.module.Class``)."""

from __future__ import annotations

from ase.calculators.calculator import get_calculator_class
from ase.calculators.names import names as ASE_CALCULATORS

from mlipilot.registry import Registry

REFERENCES: Registry[type] = Registry(
    "reference calculator", {name: name for name in ASE_CALCULATORS}, dotted=True, load=get_calculator_class,
    forms=" (ASE's names) or package.module:Class",
    check=lambda cls: None if isinstance(cls, type) else "is not a class", check_fix="name a calculator class")


def calculator_class(name: str) -> type:
    """The calculator class for a name; UnknownName (a ValueError) with what is known otherwise."""
    return REFERENCES.resolve(name)
