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

import difflib
from importlib import metadata
from typing import Any

from nnbench.errors import ConfigError
from nnbench.optimizers.base import Objective, Optimizer, Option
from nnbench.optimizers.first_order import BUILTINS as _FIRST_ORDER
from nnbench.optimizers.scipy_based import BUILTINS as _SCIPY
from nnbench.optimizers.scipy_based import ScipyStatusWarning

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

_REGISTRY: dict[str, type[Optimizer]] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_plugins_loaded = False


def register(cls: type[Optimizer]) -> type[Optimizer]:
    """Add an optimizer class to the registry under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"{cls!r} is not an Optimizer subclass")
    if not cls.name or not cls.name.replace("_", "").isalnum():
        raise ValueError(f"{cls.__name__}.name must be a word of letters, digits and _")
    _REGISTRY[cls.name] = cls
    return cls


for _cls in (*_FIRST_ORDER, *_SCIPY):
    register(_cls)


def builtin(name: str) -> bool:
    """Whether ``name`` is one of nnbench's own optimizers (whose stacked update
    the test suite checks against its step alone), not a plugin's."""
    return any(cls.name == name for cls in (*_FIRST_ORDER, *_SCIPY))


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue  # built-ins win; a plugin cannot shadow them
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
                raise TypeError(f"{ep.value} is not an nnbench Optimizer subclass")
            if cls.name != ep.name:
                raise ValueError(f"entry point {ep.name!r} names a class called {cls.name!r}")
            register(cls)
        except Exception as exc:  # a broken plugin must not break the harness
            _PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"


def available() -> dict[str, type[Optimizer]]:
    """Every registered optimizer, built-ins and plugins, by name."""
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load, with the reason."""
    _load_plugins()
    return dict(_PLUGIN_ERRORS)


def get(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name``; an unknown name suggests close ones."""
    if name not in _REGISTRY:
        _load_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _PLUGIN_ERRORS:
        raise ConfigError(f"optimizer {name!r} failed to load: {_PLUGIN_ERRORS[name]}")
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown optimizer {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))}; "
        "`nnbench list` describes them)"
    )


def make(name: str, options: dict[str, Any] | None = None) -> Optimizer:
    """A configured optimizer; unknown names and bad options raise ConfigError."""
    return get(name)(**(options or {}))
