"""One registry helper for every extension point: optimizers, datasets, backends, figures.

Each registry holds its built-ins by name and finds plugins through a Python
entry-point group (``nnbench.optimizers``, ``nnbench.datasets``,
``nnbench.backends``, ``nnbench.figures``). Plugins load lazily, once, the first
time the registry is listed or a name is not a built-in; a built-in cannot be
shadowed; a plugin that fails to load, or loads as the wrong kind of object,
is kept as a row of :meth:`Registry.errors` (``nnbench list`` shows them) and
named when asked for, never fatal; an unknown name suggests close ones.

A built-in may be registered by reference (``"module:attribute"``): it is
imported when first asked for, so listing the backends imports no cluster
engine.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from importlib import metadata
from typing import Any, Generic, TypeVar

from nnbench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Things of one kind by name.

    ``kind`` names them in messages (``optimizer``); ``group`` is the entry-point
    group plugins declare; ``accept(obj, name)`` returns the registered item for
    a loaded object, raising ``TypeError``/``ValueError`` when it is not one
    (a plugin's object named ``name``); ``error`` is the exception a bad name
    raises; ``hint`` ends the unknown-name message (``nnbench list`` ...).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        accept: Callable[[Any, str], T],
        error: type[Exception] = ConfigError,
        hint: str = "",
    ) -> None:
        self.kind, self.group, self.error, self.hint = kind, group, error, hint
        self._accept = accept
        self._items: dict[str, T | str] = {}  # a str: a reference not yet imported
        self._builtins: set[str] = set()
        self._errors: dict[str, str] = {}
        self._plugins_found = False

    def register(self, name: str, item: T | str, builtin: bool = False) -> None:
        """Add ``item`` (or a ``"module:attribute"`` reference to it) as ``name``."""
        self._items[name] = item
        if builtin:
            self._builtins.add(name)

    def unregister(self, name: str) -> T | str | None:
        """Take ``name`` out (a plugin uninstalled, say); what it was, or None."""
        self._find_plugins()
        self._builtins.discard(name)
        return self._items.pop(name, None)

    def builtin(self, name: str) -> bool:
        """Whether ``name`` is one of nnbench's own, not a plugin's."""
        return name in self._builtins

    def _find_plugins(self) -> None:
        if self._plugins_found:
            return
        self._plugins_found = True
        for ep in metadata.entry_points(group=self.group):
            if ep.name not in self._items:  # built-ins win; a plugin cannot shadow them
                self._items[ep.name] = ep.value

    def _resolve(self, name: str) -> T | None:
        item = self._items[name]
        if not isinstance(item, str):
            return item
        module, _, attribute = item.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attribute.split("."):
                obj = getattr(obj, part)
            loaded = self._accept(obj, name)
        except Exception as exc:  # a broken plugin must not break the harness
            self._errors[name] = f"{type(exc).__name__}: {exc}"
            del self._items[name]
            return None
        self._items[name] = loaded
        return loaded

    def names(self) -> list[str]:
        """Every registered name, built-ins first, without importing any."""
        self._find_plugins()
        return list(self._items)

    def available(self) -> dict[str, T]:
        """Every item that loads, by name (built-ins first, in registration order)."""
        self._find_plugins()
        out = {}
        for name in list(self._items):
            item = self._resolve(name)
            if item is not None:
                out[name] = item
        return out

    def errors(self) -> dict[str, str]:
        """Plugins that failed to load, with the reason."""
        self.available()
        return dict(self._errors)

    def get(self, name: str) -> T:
        """The item registered as ``name``: a plugin that failed says why; an unknown
        name suggests close ones."""
        if name not in self._items:
            self._find_plugins()
        if name in self._items:
            item = self._resolve(name)
            if item is not None:
                return item
        if name in self._errors:
            raise self.error(f"{self.kind} {name!r} failed to load: {self._errors[name]}")
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        did = f"; did you mean {' or '.join(close)}?" if close else ""
        hint = f"; {self.hint}" if self.hint else ""
        raise self.error(
            f"unknown {self.kind} {name!r}{did} (known: {', '.join(sorted(known))}{hint})"
        )


def of_type(base: type, word: str) -> Callable[[Any, str], Any]:
    """An ``accept`` for classes: a subclass of ``base`` (``word`` names it in the error)."""

    def accept(obj: Any, name: str) -> Any:
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(f"{name!r} is not an nnbench {word}")
        return obj

    return accept
