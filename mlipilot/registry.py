"""The one extension mechanism: a named registry (name -> object) with a dotted-path fallback.

Every extension point (agents, executors, sandboxes, stability kinds, metric plug-ins, validation
checks, reference calculators, benchmarks) is a `Registry`: one line per entry, the entry either
the object itself or a ``"package.module:Name"`` string imported on first use. A name that is not
registered may be a dotted path (``package.module:Name`` or ``package.module.Name``) where the
registry allows it; anything else fails with one line naming the nearest registered name.
`load_dotted` is the only place in MLIPilot that imports by path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from mlipilot.errors import MLIPilotError, nearest  # noqa: F401  (nearest: registry's public name too)

T = TypeVar("T")


class UnknownName(MLIPilotError, ValueError):
    """A name a registry does not know and cannot import: `problem` and `fix` apart, so a loader can
    place them after its own file and field (`config_error(path, field, e.problem, e.fix)`)."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} — {fix}")
        self.problem, self.fix = problem, fix


def is_dotted(name: str) -> bool:
    """Whether `name` reads as ``package.module:Name`` or ``package.module.Name`` (identifiers only)."""
    if not isinstance(name, str) or ("." not in name and ":" not in name) or name.count(":") > 1:
        return False
    return all(part.isidentifier() for part in name.replace(":", ".").split("."))


def load_dotted(path: str) -> Any:
    """The object (or module) a dotted path names: ``pkg.mod:Name``, ``pkg.mod.Name`` or ``pkg.mod``.
    ImportError (with what failed) when it cannot be imported or has no such attribute."""
    if ":" in path:
        module, attr = path.split(":", 1)
    else:
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as e:
            if e.name != path:  # the module exists but imports something missing: that is the error
                raise
        module, _, attr = path.rpartition(".")
        if not module:
            raise ImportError(f"no module named {path!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{module} has no {attr!r}") from None
    return obj


class Registry(Mapping[str, T], Generic[T]):
    """name -> object. Entries are objects, or ``"module:Name"`` strings imported (once) on first use.

    `what` names the kind of thing in errors ("agent", "executor"); `dotted` lets `resolve` import a
    name that is not registered; `load` turns an entry string into the object (default: import it);
    `check` refuses a loaded object that is the wrong kind of thing (returns the problem, or None;
    `check_fix` says what would do);
    `forms` says in errors what else a name may be, with its separator (" or package.module:Class")."""

    def __init__(self, what: str, entries: Mapping[str, T | str], *, dotted: bool = False,
                 load: Callable[[str], T] | None = None, check: Callable[[Any], str | None] | None = None,
                 check_fix: str = "", forms: str = ""):
        self.what, self.dotted, self.forms = what, dotted, forms
        self._entries = dict(entries)
        self._load, self._check, self._check_fix = load, check, check_fix
        self._loaded: dict[str, T] = {}

    # --- Mapping: registered names only (iteration order = registry order); values loaded on access
    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise KeyError(name)
        return self._object(name, self._entries[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entry(self, name: str) -> T | str:
        """The registered entry as written (a "module:Name" string is not imported)."""
        return self._entries[name]

    def known(self) -> str:
        return ", ".join(self._entries) + self.forms

    def unknown(self, name: object) -> UnknownName:
        """The one-line error for a name that is not registered: the nearest name and the known ones."""
        near = nearest(name, list(self._entries))
        fix = f"did you mean {near!r}? (known: {self.known()})" if near else f"use one of {self.known()}"
        return UnknownName(f"unknown {self.what} {name!r}", fix)

    def resolve(self, name: str) -> T:
        """The registered object, or (when the registry allows it) the one a dotted path names;
        UnknownName otherwise, one line with the nearest registered name."""
        if isinstance(name, str) and name in self._entries:
            return self[name]
        if self.dotted and isinstance(name, str) and is_dotted(name):
            return self._object(name, name, load_dotted)
        raise self.unknown(name)

    def _object(self, name: str, entry: T | str, load: Callable[[str], Any] | None = None) -> T:
        if name in self._loaded:
            return self._loaded[name]
        obj = entry
        if isinstance(entry, str):
            try:
                obj = (load or self._load or load_dotted)(entry)
            except Exception as e:  # an import error of any kind is the user's module's problem: said in one line
                raise UnknownName(f"{self.what} {name!r}: cannot import {entry} ({type(e).__name__}: {e})",
                                  "check the module path and PYTHONPATH") from None
        if self._check is not None and (problem := self._check(obj)):
            raise UnknownName(f"{self.what} {name!r}: {problem}", self._check_fix or "fix the entry")
        self._loaded[name] = obj
        return obj
