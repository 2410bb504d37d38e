"""The executor registry: name -> "module:Class" of an `ExecutorKind` (see base.py).

A new backend is one module holding an `ExecutorKind` subclass plus one line in `EXECUTORS`.
mlipilot.toml may also name a kind by its dotted path, `package.module:Class`, without registering it."""

from __future__ import annotations

import functools

from mlipilot.executors.base import ExecutorKind
from mlipilot.registry import Registry, UnknownName

EXECUTORS: Registry[type[ExecutorKind]] = Registry("executor", {
    "local": "mlipilot.executors.local:LocalExecutorKind",
    "debug": "mlipilot.executors.debug:DebugExecutorKind",
    "slurm": "mlipilot.executors.slurm:SlurmExecutorKind",
}, dotted=True, forms=" or a dotted package.module:Class",
    check=lambda cls: None if isinstance(cls, type) and issubclass(cls, ExecutorKind) else "is not an ExecutorKind",
    check_fix="name a subclass of mlipilot.executors.base.ExecutorKind")

__all__ = ["EXECUTORS", "ExecutorKind", "UnknownExecutor", "executor_names", "get_executor", "registered_kinds"]

UnknownExecutor = UnknownName  # a name that is neither registered nor an importable package.module:Class kind


def executor_names() -> tuple[str, ...]:
    """The registered names, in registry order (the CLI's --executor choices)."""
    return tuple(EXECUTORS)


def get_executor(name: str) -> ExecutorKind:
    """The kind registered as `name`, or the class a dotted `package.module:Class` names; anything
    else raises UnknownExecutor, one line naming the nearest registered name."""
    if not isinstance(name, str) or (name not in EXECUTORS and ":" not in name):
        raise EXECUTORS.unknown(name)
    return _instance(name)


@functools.cache
def _instance(name: str) -> ExecutorKind:
    cls = EXECUTORS.resolve(name)
    try:
        kind = cls()
    except Exception as e:  # e.g. an abstract method left out
        raise UnknownExecutor(f"executor {name!r}: {type(e).__name__}: {e}", "fix the class") from None
    if not kind.name:
        kind.name = name  # a user kind without a name of its own is known by its path
    return kind


def registered_kinds() -> list[ExecutorKind]:
    return [get_executor(n) for n in EXECUTORS]
