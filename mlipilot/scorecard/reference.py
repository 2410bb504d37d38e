"""Reference calculators for the force check along MD: any ASE calculator by its registry name
(``emt``, ``lj``, ``morse``, ``eam``, ... — ASE's own ``get_calculator_class``) or a user's own
class by dotted path (``package.module:Class`` or ``package.module.Class``)."""

from __future__ import annotations

from pathlib import Path

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


# Reference implementations the training job never needs: hidden from its sandbox whatever the benchmark
# (ASE's EMT labels cu_emt and cu_hot; PySCF labels qm7_b3lyp), besides the run's own reference.
ALWAYS_HIDDEN = ("emt", "pyscf")
PYSCF_NAMES = ("pyscf", "pyscf-b3lyp", "b3lyp")
_NEEDED_BY_TRAINING = ("mace", "mlipilot", "torch", "e3nn", "numpy", "ase.calculators.calculator")


def reference_sources(names) -> list[str]:
    """The files (a module and its cached bytecode) or package folders that implement these reference
    calculators, for the training sandbox to hide: a job that cannot import the reference cannot label
    its own frames with it. Modules training itself needs (mace-torch's, MLIPilot's) are never listed."""
    import importlib.util
    import inspect
    import sys

    out: list[str] = []
    for name in dict.fromkeys(n for n in names if n):
        if str(name).lower() in PYSCF_NAMES:
            spec = importlib.util.find_spec("pyscf")
            out += list(spec.submodule_search_locations or []) if spec else []
            continue
        try:
            cls = calculator_class(str(name))
        except Exception:
            continue  # an unknown name is refused where the scorecard or [data] is read, not here
        module = getattr(cls, "__module__", "") or ""
        if any(module == m or module.startswith(m + ".") for m in _NEEDED_BY_TRAINING):
            continue
        try:
            source = Path(inspect.getsourcefile(cls) or sys.modules[module].__file__)
        except (TypeError, KeyError, AttributeError):
            continue
        out.append(str(source))
        out += [str(p) for p in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc")]
    return out
