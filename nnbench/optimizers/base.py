"""What every optimizer plugin is: declared options, an explicit state, a step.

An optimizer never owns the weights. On each step it is handed the flat
vector ``theta`` (which it changes in place) and a minibatch objective
``fun(theta) -> (loss, flat_gradient)``; everything that changes between steps
(velocities, running means, the decayed learning rate) lives in the ``state``
dict made by :meth:`Optimizer.init`. Step-wise methods call ``fun`` once per
step; minimisers such as scipy's CG call it as often as they need, and the
objective counts every call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nnbench.errors import ConfigError

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Option:
    """One hyperparameter: its type, default, accepted range and meaning."""

    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be > low, not >= low
    choices: tuple[str, ...] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        kind = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
        return kind[self.kind] + (" " + " and ".join(parts) if parts else "")

    def validate(self, optimizer: str, name: str, value: Any) -> Any:
        """``value`` converted to this option's type, or a ConfigError naming the fix."""
        kind = self.kind
        given = value
        ok = True
        if kind is bool:
            ok = isinstance(value, (bool, np.bool_))
        elif kind is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, bool
            )
            ok = ok and math.isfinite(float(value))
        elif kind is str:
            ok = isinstance(value, str)
        if ok:
            value = kind(value)
            if self.choices is not None:
                ok = value in self.choices
            if self.low is not None:
                ok = ok and (value > self.low if self.low_open else value >= self.low)
            if self.high is not None:
                ok = ok and value <= self.high
        if not ok:
            raise ConfigError(
                f"{optimizer}: option {name}={given!r} is invalid; it takes "
                f"{self.describe_range()} (default {self.default!r})"
            )
        return value


class Optimizer:
    """Base class of optimizer plugins.

    Subclasses set ``name``, ``summary`` and ``options`` and implement
    :meth:`init` and :meth:`step`. Options are validated on construction and
    available as ``self.config``; unknown options are rejected, not ignored.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "no options"
            raise ConfigError(
                f"{self.name}: unknown option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; it accepts {accepted}"
            )
        self.given = dict(options)
        self.config = {
            key: opt.validate(self.name, key, options.get(key, opt.default))
            for key, opt in self.options.items()
        }

    @property
    def label(self) -> str:
        """A readable, stable label: ``adam[learning_rate=0.001]`` (options given only)."""
        if not self.given:
            return self.name
        inner = ",".join(f"{k}={self.config[k]!r}".replace("'", "") for k in sorted(self.given))
        return f"{self.name}[{inner}]"

    def init(self, theta: np.ndarray) -> dict[str, Any]:
        """The state before the first step (for the start ``theta``)."""
        return {}

    def step(self, fun: Objective, theta: np.ndarray, state: dict[str, Any]) -> float:
        """Update ``theta`` in place from one minibatch; return the minibatch loss.

        ``fun(theta)`` returns the loss and the gradient in a buffer that the
        next call overwrites: use it (even in place) before calling ``fun``
        again, or copy it to keep it.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<optimizer {self.label}>"
