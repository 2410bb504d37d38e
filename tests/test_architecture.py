"""The layers of docs/architecture.md, enforced by import-linter's contracts in .importlinter: every
import (function-level and TYPE_CHECKING ones included) runs downwards, the agents and the executors
do not know each other, the MD engine knows no scorer — and every module of the package is in a layer,
so a new module cannot slip past the contract."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="pip install -e .[test] (import-linter)")
    p = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout


def test_every_module_is_in_a_layer():
    cp = configparser.ConfigParser()
    cp.read(ROOT / ".importlinter")
    names = {m.strip() for line in cp["importlinter:contract:layers"]["layers"].strip().splitlines()
             for m in line.replace("|", ":").split(":")}
    package = ROOT / "mlipilot"
    missing = []
    for f in sorted(package.rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module == "mlipilot":
            continue
        if not any(module == n or module.startswith(n + ".") for n in names):
            missing.append(module)
    assert not missing, f"add these to a layer in .importlinter (and docs/architecture.md): {missing}"
