"""What the audit flags in the agent's training code: a trial whose editable Python calls a reference
calculator (an ASE calculator such as EMT, or PySCF) may be labelling its own frames outside the
labelling budget. The sandbox hides the reference's implementation (so the call fails), and the trial's
commit carries `MLIPilot-Flags` so a reader of `git log` sees the attempt.

A static scan (ast), so a determined agent can hide a call (exec of an encoded string); what it cannot
hide is the call working — the sandbox sees to that. A re-implemented reference is beyond both: see the
threat model (docs/README) on what a labelling budget can and cannot bind."""

from __future__ import annotations

import ast
from pathlib import Path

# ASE modules the training code may import: the base class and the single-point results container
# (mace-torch's own data handling uses them)
ALLOWED_ASE_CALCULATORS = ("ase.calculators.calculator", "ase.calculators.singlepoint")
REFERENCE_PACKAGES = ("pyscf", "gpaw", "psi4", "xtb", "tblite", "lammps", "asap3")


def _flag_module(name: str) -> str | None:
    if name.startswith("ase.calculators.") and not name.startswith(ALLOWED_ASE_CALCULATORS):
        return f"imports {name}"
    if name.split(".")[0] in REFERENCE_PACKAGES:
        return f"imports {name}"
    return None


def scan_source(text: str, where: str) -> list[str]:
    """Flags for one Python file: '<file>:<line> <what>'."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    flags = []
    for node in ast.walk(tree):
        found = None
        if isinstance(node, ast.Import):
            found = next((f for a in node.names if (f := _flag_module(a.name))), None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module in ("ase", "ase.calculators") \
                else [node.module]
            found = next((f for n in names if (f := _flag_module(n))), None)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "get_calculator_class", "import_module", "__import__"):
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                name = arg.value if "." in arg.value or arg.value in REFERENCE_PACKAGES else f"ase.calculators.{arg.value}"
                found = _flag_module(name) and f"loads {arg.value!r}"
            elif getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_calculator_class":
                found = "calls get_calculator_class"
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "calc" for t in node.targets):
            found = "attaches a calculator to atoms (.calc = ...)"
        if found:
            flags.append(f"{where}:{getattr(node, 'lineno', 0)} {found}")
    return flags


def scan_tree(root: Path, editable: tuple[str, ...]) -> list[str]:
    """Flags for every .py file under the editable paths of a checkout."""
    root = Path(root)
    flags = []
    for rel in editable:
        base = root / rel
        files = [base] if base.is_file() else sorted(base.rglob("*.py")) if base.is_dir() else []
        for f in files:
            if f.suffix == ".py" and f.is_file() and not f.is_symlink():
                flags += scan_source(f.read_text(errors="replace"), f.relative_to(root).as_posix())
    return flags


def trailer(flags: list[str], limit: int = 3) -> str:
    """The MLIPilot-Flags trailer's value: the first few flags, and how many more."""
    more = f"; +{len(flags) - limit} more" if len(flags) > limit else ""
    return "reference-calculator: " + "; ".join(flags[:limit]) + more
