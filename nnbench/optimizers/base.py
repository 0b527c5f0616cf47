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

    Subclasses set ``name``, ``summary`` and ``options``, and write their update
    rule once, in one of two forms:

    - vectorised, for K runs at once (:meth:`stack_init` and
      :meth:`stack_step`), their weights the rows of a ``(K, n_params)``
      array, their number options per-run columns: every first-order
      built-in. A run alone is a stack of one (K = 1), so the same code trains
      a lone run and a tuning study's stacked trials (:mod:`nnbench.train`).
    - for one run (:meth:`init` and :meth:`step`): a method that cannot be
      vectorised, such as scipy's minimisers, which call the objective as
      often as their line searches need. Its runs train alone, through the
      same loop.

    A plugin may write both: its runs alone then use :meth:`step`, its stacks
    :meth:`stack_step`, and :func:`nnbench.testing.check_optimizer` (and the
    runner, once per stack) checks that they agree bit for bit.

    Options are validated on construction and available as ``self.config``;
    unknown options are rejected, not ignored. Each run of a stack has its own
    value of every number option; any other option (a form, a flag) is the
    stack's. Each has its own row of every state entry, except the entries
    named in ``shared_state`` (a step count), which are the stack's.

    Two optional declarations, each handled here once for every optimizer:

    - ``schedules``: state entries decayed by a factor after every step,
      ``{"lr": ("learning_rate", "learning_rate_decay")}``: ``state["lr"]``
      starts at the option ``learning_rate`` and is multiplied by the option
      ``learning_rate_decay`` after each step.
    - :meth:`diagnostics`: what the optimizer wants recorded about its run
      (scipy's failure counts, say); a ``"warning"`` entry is added to the
      run's message.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    schedules: ClassVar[Mapping[str, tuple[str, str]]] = {}
    # Entries of the stacked state that all runs of a stack share (a step
    # count); every other entry is per run: an array whose first axis is the run.
    shared_state: ClassVar[tuple[str, ...]] = ()
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
        """The state of one run before its first step (for the start ``theta``)."""
        return {}

    def step(self, fun: Objective, theta: np.ndarray, state: dict[str, Any]) -> float:
        """Update ``theta`` in place from one minibatch; return the minibatch loss.

        ``fun(theta)`` returns the loss and the gradient in a buffer that the
        next call overwrites: use it (even in place) before calling ``fun``
        again, or copy it to keep it.
        """
        raise NotImplementedError

    def stack_init(self, thetas: np.ndarray, opts: Mapping[str, Any]) -> dict[str, Any]:
        """The state of K runs before their first step (``thetas`` of shape ``(K,
        n_params)``): a per-run entry an array whose first axis is the run
        (``(K, n_params)``, say), a shared one named in ``shared_state``.
        ``opts`` holds every option: a number option as a float64 column ``(K,
        1)``, one value per run, any other option as its one value."""
        return {}

    def stack_step(
        self,
        fun: StackObjective,
        thetas: np.ndarray,
        state: dict[str, Any],
        opts: Mapping[str, Any],
    ) -> np.ndarray:
        """The update rule for K runs at once: every row of ``thetas`` updated in
        place from ``fun(thetas) -> (losses (K,), gradients (K, n_params))``;
        their minibatch losses. A row's update must not depend on the other
        rows: a run computes the same numbers in a stack of any size.

        Where a number option meets the weights, meet them with its column cast
        to their dtype (:func:`column`), as a Python float would be; where it
        makes a float64 number (``np.sqrt`` of an option), use the float64
        column. A plugin that also writes :meth:`step` must match it bit for bit.
        """
        raise NotImplementedError

    @classmethod
    def can_stack(cls) -> bool:
        """Whether the optimizer has a vectorised step (:meth:`stack_step`)."""
        return cls.stack_step is not Optimizer.stack_step

    @classmethod
    def steps_alone(cls) -> bool:
        """Whether a run alone takes the optimizer's own :meth:`step` (it has
        one, or no vectorised step) rather than a stack of one."""
        return cls.step is not Optimizer.step or not cls.can_stack()

    def diagnostics(self, state: dict[str, Any]) -> dict[str, Any]:
        """What to record about the run, from the final state (JSON-able values)."""
        return {}

    def start(self, theta: np.ndarray) -> dict[str, Any]:
        """:meth:`init`, with every scheduled entry at its starting value."""
        return start_schedules(self.init(theta), self.schedules, self.config)

    def update(self, fun: Objective, theta: np.ndarray, state: dict[str, Any]) -> float:
        """:meth:`step`, then every scheduled entry decayed by its factor."""
        loss = self.step(fun, theta, state)
        decay(state, decays_of(self.schedules, self.config), self.config)
        return loss

    def __repr__(self) -> str:
        return f"<optimizer {self.label}>"


_UNSET = object()


# Schedules (Optimizer.schedules), for a run alone (its options) or a stack
# (per-run columns): written once for both.
def start_schedules(
    state: dict[str, Any], schedules: Mapping[str, tuple[str, str]], values: Mapping[str, Any]
) -> dict[str, Any]:
    """``state`` with every scheduled entry at its starting option's value."""
    for key, (first, _) in schedules.items():
        value = values[first]
        state[key] = value.copy() if isinstance(value, np.ndarray) else value
    return state


def decays_of(
    schedules: Mapping[str, tuple[str, str]], values: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """The scheduled entries that change, with their factor's option: a factor of
    1 for every run leaves its entry as it is, and is not multiplied."""
    return [(key, factor) for key, (_, factor) in schedules.items()
            if np.any(np.asarray(values[factor]) != 1)]  # fmt: skip


def decay(state: dict[str, Any], decays: list[tuple[str, str]], values: Mapping[str, Any]) -> None:
    """After a step: each entry of ``decays`` multiplied by its factor."""
    for key, factor in decays:
        state[key] *= values[factor]


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
    """K configurations of one optimizer, stepping K runs at once through its
    vectorised step: those whose :func:`stack_signature` is the same (a run
    alone: K = 1). Runs leave the stack with :meth:`keep`.
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
        self.per_run = [key for key in kind.options if key not in shared]
        self.opts = StackOptions(
            (key, np.array([m.config[key] for m in members], dtype=np.float64)[:, None])
            if key not in shared
            else (key, shared[key])
            for key in kind.options
        )
        self.decays = decays_of(first.schedules, self.opts)

    def start(self, thetas: np.ndarray) -> dict[str, Any]:
        state = start_schedules(self.first.stack_init(thetas, self.opts), self.first.schedules,
                                self.opts)  # fmt: skip
        k = len(thetas)
        for key, value in state.items():
            if key not in self.first.shared_state and not (
                isinstance(value, np.ndarray) and value.ndim and value.shape[0] == k
            ):
                raise ValueError(
                    f"{self.first.name}: state entry {key!r} is not an array with a row per "
                    f"run; name it in shared_state if the runs of a stack share it"
                )
        return state

    def update(self, fun: StackObjective, thetas: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        losses = self.first.stack_step(fun, thetas, state, self.opts)
        if self.decays:
            decay(state, self.decays, self.opts)
        return losses

    def keep(self, state: dict[str, Any], keep: np.ndarray) -> None:
        """Only the runs where ``keep`` (a boolean mask over the K) is true go on:
        every per-run option column and state entry shrinks to them."""
        for key in self.per_run:
            self.opts[key] = np.ascontiguousarray(self.opts[key][keep])
        self.opts.made.clear()
        for key, value in state.items():
            if key not in self.first.shared_state:
                state[key] = np.ascontiguousarray(value[keep])

    def member_state(self, state: dict[str, Any], p: int) -> dict[str, Any]:
        """Run ``p``'s own state: its row of every per-run entry (a column's
        number as a float), every shared entry as it is (what ``diagnostics``
        reads)."""

        def own(value: np.ndarray) -> Any:
            row = value[p]
            return float(row[0]) if row.shape == (1,) else row.copy()

        return {
            key: value if key in self.first.shared_state else own(value)
            for key, value in state.items()
        }


class Alone:
    """One run through its optimizer's own :meth:`~Optimizer.step` (scipy's
    minimisers; a plugin's step, its reference), with the interface of a
    :class:`Stack` of one: the loop is the same either way."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self._row: np.ndarray | None = None

    def start(self, thetas: np.ndarray) -> dict[str, Any]:
        if len(thetas) != 1:
            raise ValueError(f"{self.optimizer.name} steps one run at a time")
        self._row = thetas[0]
        return self.optimizer.start(self._row)

    def update(self, fun: Any, thetas: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        return np.array([self.optimizer.update(fun, self._row, state)])

    def keep(self, state: dict[str, Any], keep: np.ndarray) -> None:
        """A run alone goes on or ends: there is nothing to shrink."""

    def member_state(self, state: dict[str, Any], p: int) -> dict[str, Any]:
        return state


def stepper(members: Sequence[Optimizer]) -> Stack | Alone:
    """What steps these runs: a :class:`Stack` for several, or for one whose
    optimizer has only its vectorised step; one run alone otherwise."""
    if len(members) == 1 and type(members[0]).steps_alone():
        return Alone(members[0])
    return Stack(members)


class StackOptions(dict):
    """A stack's options, as :meth:`Optimizer.stack_step` gets them: every number
    option a float64 column ``(K, 1)``, one value per run, any other option its
    one value. What a step derives from a column, the same at every step, it may
    take from :meth:`column` and :meth:`floats`, made once per stack."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.made: dict[tuple, Any] = {}

    def column(
        self, key: str, like: np.ndarray, derive: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        """``column(derive(self[key]), like)``, made once: the column (or what
        ``derive`` makes of it, in float64) in the dtype of ``like``."""
        made = (key, derive, like.dtype)
        value = self.made.get(made)
        if value is None:
            values = self[key] if derive is None else derive(self[key])
            value = self.made[made] = column(values, like)
        return value

    def floats(self, *keys: str) -> list[tuple[float, ...]]:
        """Per run, the numbers of these columns as Python floats, made once."""
        value = self.made.get(keys)
        if value is None:
            value = self.made[keys] = list(zip(*(self[key][:, 0].tolist() for key in keys)))
        return value


def complement(values: np.ndarray) -> np.ndarray:
    """``1 - values``: a decay's complement (a module-level function, so that
    :meth:`StackOptions.column` makes it once)."""
    return 1 - values


def column(values: np.ndarray, like: np.ndarray) -> np.ndarray | np.generic:
    """A float64 column of per-run numbers in the dtype of ``like`` (the weights):
    what a Python float becomes where it meets an array. For one run, a numpy
    scalar of that dtype: numpy's calls take it faster than a ``(1, 1)`` array,
    and it makes the same numbers."""
    if values.shape == (1, 1):
        return like.dtype.type(values[0, 0])
    return values.astype(like.dtype, copy=False)


def make_label(name: str, options: Mapping[str, Any]) -> str:
    """``name[key=value,...]`` over sorted keys; just ``name`` without options."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]!r}".replace("'", "") for k in sorted(options))
    return f"{name}[{inner}]"
