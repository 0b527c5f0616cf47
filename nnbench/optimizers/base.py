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

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from nnbench.errors import ConfigError
from nnbench.options import Option

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


class Optimizer:
    """Base class of optimizer plugins.

    Subclasses set ``name``, ``summary`` and ``options`` and implement
    :meth:`init` and :meth:`step`. Options are validated on construction and
    available as ``self.config``; unknown options are rejected, not ignored.

    Two optional declarations, each handled here once for every optimizer:

    - ``schedules``: state entries decayed by a factor after every step,
      ``{"lr": ("learning_rate", "learning_rate_decay")}``: ``state["lr"]``
      starts at the option ``learning_rate`` and is multiplied by the option
      ``learning_rate_decay`` after each step.
    - :meth:`diagnostics`: what the optimizer wants recorded about its run
      (scipy's failure counts, say); a ``"warning"`` entry is added to the
      run's message.

    The training loop calls :meth:`start` and :meth:`update`, which wrap
    :meth:`init` and :meth:`step` with the schedules.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    schedules: ClassVar[Mapping[str, tuple[str, str]]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "no options"
            raise ConfigError(
                f"{self.name}: unknown option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; it accepts {accepted}"
            )
        self.config = {
            key: self._check(key, opt, options.get(key, opt.default))
            for key, opt in self.options.items()
        }
        # The options that differ from their defaults, canonical: what the
        # label shows and what a run's identity hashes.
        self.given = {
            key: self.config[key]
            for key in sorted(options)
            if self.config[key] != self._check(key, self.options[key], self.options[key].default)
        }

    def _check(self, key: str, opt: Option, value: Any) -> Any:
        try:
            return opt.convert(value)
        except ValueError as exc:
            raise ConfigError(
                f"{self.name}: option {key}={value!r} is invalid; it takes {exc} "
                f"(default {opt.default!r})"
            ) from None

    @property
    def label(self) -> str:
        """A readable, stable label: ``adam[learning_rate=0.01]`` (non-default options only)."""
        return make_label(self.name, self.given)

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

    def diagnostics(self, state: dict[str, Any]) -> dict[str, Any]:
        """What to record about the run, from the final state (JSON-able values)."""
        return {}

    def start(self, theta: np.ndarray) -> dict[str, Any]:
        """:meth:`init`, with every scheduled entry at its starting value."""
        state = self.init(theta)
        for key, (first, _) in self.schedules.items():
            state[key] = self.config[first]
        return state

    def update(self, fun: Objective, theta: np.ndarray, state: dict[str, Any]) -> float:
        """:meth:`step`, then every scheduled entry decayed by its factor."""
        loss = self.step(fun, theta, state)
        for key, (_, factor) in self.schedules.items():
            state[key] *= self.config[factor]
        return loss

    def __repr__(self) -> str:
        return f"<optimizer {self.label}>"


def make_label(name: str, options: Mapping[str, Any]) -> str:
    """``name[key=value,...]`` over sorted keys; just ``name`` without options."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]!r}".replace("'", "") for k in sorted(options))
    return f"{name}[{inner}]"
