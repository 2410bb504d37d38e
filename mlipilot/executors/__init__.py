"""The executor registry: name -> "module:Class" of an `ExecutorKind` (see base.py).

A new backend is one module holding an `ExecutorKind` subclass plus one line in `EXECUTORS`.
mlipilot.toml may also name a kind by its dotted path, `package.module:Class`, without registering it."""

from __future__ import annotations

import difflib
import functools
import importlib

from mlipilot.errors import MLIPilotError
from mlipilot.executors.base import ExecutorKind

EXECUTORS: dict[str, str] = {
    "local": "mlipilot.executors.local:LocalExecutorKind",
    "debug": "mlipilot.executors.debug:DebugExecutorKind",
    "slurm": "mlipilot.executors.slurm:SlurmExecutorKind",
}

__all__ = ["EXECUTORS", "ExecutorKind", "UnknownExecutor", "executor_names", "get_executor", "registered_kinds"]


class UnknownExecutor(MLIPilotError, ValueError):
    """A name that is neither registered nor an importable `package.module:Class` ExecutorKind."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} — {fix}")
        self.problem, self.fix = problem, fix


def executor_names() -> tuple[str, ...]:
    """The registered names, in registry order (the CLI's --executor choices)."""
    return tuple(EXECUTORS)


def get_executor(name: str) -> ExecutorKind:
    """The kind registered as `name`, or the class a dotted `package.module:Class` names; anything
    else raises UnknownExecutor, one line naming the nearest registered name."""
    if not isinstance(name, str) or (name not in EXECUTORS and ":" not in name):
        near = difflib.get_close_matches(str(name), list(EXECUTORS), n=1, cutoff=0.6)
        known = f"{', '.join(EXECUTORS)} or a dotted package.module:Class"
        raise UnknownExecutor(f"unknown executor {name!r}",
                              f"did you mean {near[0]!r}? (known: {known})" if near else f"use one of {known}")
    return _load(name)


@functools.cache
def _load(name: str) -> ExecutorKind:
    module_name, _, class_name = EXECUTORS.get(name, name).partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise UnknownExecutor(f"executor {name!r}: cannot import {module_name} ({type(e).__name__}: {e})",
                              "put its package on PYTHONPATH or fix the module") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ExecutorKind)):
        problem = f"{module_name} has no {class_name!r}" if cls is None else f"{name} is not an ExecutorKind"
        raise UnknownExecutor(f"executor {name!r}: {problem}",
                              "name a subclass of mlipilot.executors.base.ExecutorKind")
    try:
        kind = cls()
    except Exception as e:  # e.g. an abstract method left out
        raise UnknownExecutor(f"executor {name!r}: {type(e).__name__}: {e}", "fix the class") from None
    if not kind.name:
        kind.name = name  # a user kind without a name of its own is known by its path
    return kind


def registered_kinds() -> list[ExecutorKind]:
    return [get_executor(n) for n in EXECUTORS]
