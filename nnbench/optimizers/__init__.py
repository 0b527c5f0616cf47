"""The optimizer registry: built-ins by name, third-party plugins by entry point.

A package adds optimizers by declaring, in its ``pyproject.toml``::

    [project.entry-points."nnbench.optimizers"]
    myopt = "mypackage.module:MyOptimizer"

where ``MyOptimizer`` subclasses :class:`nnbench.optimizers.Optimizer`.
Entry points are loaded lazily, the first time the registry is listed or a
name is not a built-in; a plugin that fails to import is reported by
:func:`plugin_errors` (and ``nnbench list``), never fatal.
"""

from __future__ import annotations

from typing import Any

from nnbench.optimizers.base import Objective, Optimizer, Option
from nnbench.optimizers.first_order import BUILTINS as _FIRST_ORDER
from nnbench.optimizers.scipy_based import BUILTINS as _SCIPY
from nnbench.optimizers.scipy_based import ScipyStatusWarning
from nnbench.registry import Registry

__all__ = [
    "Objective",
    "Optimizer",
    "Option",
    "ScipyStatusWarning",
    "available",
    "builtin",
    "get",
    "make",
    "plugin_errors",
    "register",
]

ENTRY_POINT_GROUP = "nnbench.optimizers"


def _accept(cls: Any, name: str) -> type[Optimizer]:
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"{name!r} is not an nnbench Optimizer subclass")
    if cls.name != name:
        raise ValueError(f"entry point {name!r} names a class called {cls.name!r}")
    return cls


_REGISTRY: Registry[type[Optimizer]] = Registry(
    "optimizer", ENTRY_POINT_GROUP, _accept, hint="`nnbench list` describes them"
)


def register(cls: type[Optimizer], builtin: bool = False) -> type[Optimizer]:
    """Add an optimizer class to the registry under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"{cls!r} is not an Optimizer subclass")
    if not cls.name or not cls.name.replace("_", "").isalnum():
        raise ValueError(f"{cls.__name__}.name must be a word of letters, digits and _")
    _REGISTRY.register(cls.name, cls, builtin)
    return cls


for _cls in (*_FIRST_ORDER, *_SCIPY):
    register(_cls, builtin=True)


def builtin(name: str) -> bool:
    """Whether ``name`` is one of nnbench's own optimizers (whose stacked update
    the test suite checks against its step alone), not a plugin's."""
    return _REGISTRY.builtin(name)


def available() -> dict[str, type[Optimizer]]:
    """Every registered optimizer, built-ins and plugins, by name."""
    return dict(sorted(_REGISTRY.available().items()))


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load, with the reason."""
    return _REGISTRY.errors()


def get(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name``; an unknown name suggests close ones."""
    return _REGISTRY.get(name)


def make(name: str, options: dict[str, Any] | None = None) -> Optimizer:
    """A configured optimizer; unknown names and bad options raise ConfigError."""
    return get(name)(**(options or {}))
