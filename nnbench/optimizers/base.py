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

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from nnbench.errors import ConfigError
from nnbench.options import FLOAT, Option

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
# A stack's objective: ``fun(thetas) -> (losses (K,), gradients (K, n_params))``.
StackObjective = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


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

    A vectorised form is optional: :meth:`stack_init` and :meth:`stack_step`
    do the same for K runs at once (:class:`Stack`), their weights the rows
    of a ``(K, n_params)`` array. A tuning study trains trials that share a
    seed that way (:mod:`nnbench.stack`); an optimizer without the pair runs
    each trial alone.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    schedules: ClassVar[Mapping[str, tuple[str, str]]] = {}
    # The options that give the method a fair chance on a small problem (the
    # defaults when empty): what nnbench.testing's check_lowers_the_loss trains with.
    tuning_default: ClassVar[Mapping[str, Any]] = {}
    # Checks of nnbench.testing the optimizer fails on purpose, each with why:
    # such a check must fail (one that starts to pass is reported).
    expected_failures: ClassVar[Mapping[str, str]] = {}
    # The values nnbench.testing's stacked checks try for an option that is not a
    # number (each other choice or flag when not named here).
    check_values: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    # Its colour in every figure (a matplotlib colour); None: one drawn from the name.
    colour: ClassVar[str | None] = None

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

    def stack_init(self, thetas: np.ndarray, opts: Mapping[str, Any]) -> dict[str, Any]:
        """The state of K runs before their first step: :meth:`init` for each row
        of ``thetas``, its arrays stacked ``(K, n_params)``. ``opts`` holds every
        option: a number option as a float64 column ``(K, 1)``, one value per
        run, any other option as its one value (the same for all K)."""
        return {}

    def stack_step(
        self,
        fun: StackObjective,
        thetas: np.ndarray,
        state: dict[str, Any],
        opts: Mapping[str, Any],
    ) -> np.ndarray:
        """:meth:`step` for K runs at once: every row of ``thetas`` updated in
        place exactly as :meth:`step` would update it; their minibatch losses.

        Exactly means bit for bit: where :meth:`step` meets the weights with a
        Python float (cast to the weights' dtype first), meet them with the
        column cast to that dtype (:func:`column`); where it uses a float64
        number (numpy's ``np.sqrt`` of a float, say), use the float64 column.
        """
        raise NotImplementedError

    @classmethod
    def can_stack(cls) -> bool:
        """Whether the optimizer has a vectorised step (:meth:`stack_step`)."""
        return cls.stack_step is not Optimizer.stack_step

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


_UNSET = object()


def stack_signature(kind: type[Optimizer], options: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the configurations of ``kind`` in one stack must share, for these options
    (the given ones: the rest take their defaults); None when ``kind`` has no
    vectorised step. The rule, written once: options may differ in numbers only
    (learning rates, decays); any other option (a form, a flag), and whether an
    optional number is set at all, selects other code and must be the same."""
    if not kind.can_stack():
        return None
    config = {key: options.get(key, opt.default) for key, opt in kind.options.items()}
    return {
        key: value
        for key, value in config.items()
        if kind.options[key].value_kind is not FLOAT or value is None
    }


class Stack:
    """K configurations of one optimizer, stepping K runs at once: those whose
    :func:`stack_signature` is the same. Runs leave the stack with :meth:`keep`.
    """

    def __init__(self, members: Sequence[Optimizer]) -> None:
        first = members[0]
        kind = type(first)
        if any(type(m) is not kind for m in members):
            raise ValueError("a stack holds runs of one optimizer")
        shared = stack_signature(kind, first.config)
        if shared is None:
            raise ValueError(f"{first.name} has no vectorised step: its runs train alone")
        for m in members[1:]:
            theirs = stack_signature(kind, m.config) or {}
            differ = sorted(k for k in shared.keys() | theirs.keys()
                            if shared.get(k, _UNSET) != theirs.get(k, _UNSET))  # fmt: skip
            if differ:
                raise ValueError(
                    f"{first.name}: runs whose option {differ[0]} differs cannot share a stack"
                )
        self.first = first
        self.opts: dict[str, Any] = {
            key: np.array([m.config[key] for m in members], dtype=np.float64)[:, None]
            if key not in shared
            else shared[key]
            for key in kind.options
        }

    def start(self, thetas: np.ndarray) -> dict[str, Any]:
        state = self.first.stack_init(thetas, self.opts)
        for key, (first, _) in self.first.schedules.items():
            state[key] = self.opts[first].copy()
        return state

    def update(self, fun: StackObjective, thetas: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        losses = self.first.stack_step(fun, thetas, state, self.opts)
        for key, (_, factor) in self.first.schedules.items():
            state[key] *= self.opts[factor]
        return losses

    def keep(self, state: dict[str, Any], keep: np.ndarray) -> None:
        """Only the runs where ``keep`` (a boolean mask over the K) is true go on:
        every per-run array of the options and of ``state`` shrinks to them."""
        k = len(keep)
        for store in (self.opts, state):
            for key, value in store.items():
                if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == k:
                    store[key] = np.ascontiguousarray(value[keep])


def column(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A float64 column of per-run numbers in the dtype of ``like`` (the weights):
    what a Python float becomes where it meets an array."""
    return values.astype(like.dtype, copy=False)


def make_label(name: str, options: Mapping[str, Any]) -> str:
    """``name[key=value,...]`` over sorted keys; just ``name`` without options."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]!r}".replace("'", "") for k in sorted(options))
    return f"{name}[{inner}]"
