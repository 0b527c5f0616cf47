"""Checks an optimizer plugin must pass: nnbench's counterpart of scikit-learn's
``check_estimator``.

A plugin author runs ``check_optimizer(MyOptimizer)`` (or the registered name)
in their own tests; nnbench's suite runs it over every registered optimizer,
built-in or installed, so a plugin installed beside nnbench passes nnbench's
suite without an edit to it. What a check needs to know about an optimizer,
the optimizer declares:

- ``options``: their defaults, ranges and search spaces. The stacked checks
  draw their members' settings from them: the defaults, every number option
  at another value its range admits, and each searched option inside its
  space; every non-default choice or flag makes a stack of its own.
- ``tuning_default``: the options that give the method a fair chance on a
  small problem (what :func:`check_lowers_the_loss` trains with).
- ``expected_failures``: checks the optimizer fails on purpose, each with the
  reason (the post's RMSPROP as published does not learn). Such a check must
  fail: one that starts to pass is reported too.

The checks (:data:`CHECKS`), each raising ``AssertionError`` with what differs:

- :func:`check_options_validated`: the defaults are accepted, an unknown
  option and every value outside an option's range are refused with a
  :class:`~nnbench.errors.ConfigError`, another valid value shows in the label.
- :func:`check_deterministic`: two runs of one setting and seed are equal, bit
  for bit.
- :func:`check_lowers_the_loss`: at ``tuning_default``, 150 minibatch steps
  on a small problem lower the training cost below 70% of its start, and
  validation accuracy passes 0.6.
- :func:`check_stacked_equals_alone` (an optimizer with a vectorised step): a
  stack of members with different options equals each run alone, bit for bit
  (weights, every evaluation row, status, counts), in float32 and float64. A
  run alone takes the optimizer's single-run ``step`` when it has one (a
  plugin's reference), else its vectorised step on a stack of one: then the
  check is that a member's numbers never depend on the rows beside it.
- :func:`check_state_per_member`: each member's own state out of the stack
  equals the state of its run alone.
- :func:`check_leaving_member`: a member whose weights turn NaN mid-run leaves
  the stack, and the members beside it go on, each equal to its run alone
  (per-member state the stack cannot shrink with them shows here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from nnbench import optimizers
from nnbench.errors import ConfigError
from nnbench.optimizers import Optimizer
from nnbench.options import FLOAT, STR, Option, other_value

__all__ = [
    "CHECKS",
    "check_deterministic",
    "check_leaving_member",
    "check_lowers_the_loss",
    "check_optimizer",
    "check_options_validated",
    "check_stacked_equals_alone",
    "check_state_per_member",
    "stack_settings",
]


def _class(optimizer: str | type[Optimizer]) -> type[Optimizer]:
    return optimizers.get(optimizer) if isinstance(optimizer, str) else optimizer


@cache
def _data() -> Any:
    from nnbench.data import make_synthetic

    return make_synthetic(n_samples=300, n_features=12, n_classes=3, seed=0)


def _run(cls: type[Optimizer], options: Mapping[str, Any], dtype: str = "float64") -> Any:
    """One run alone on the stacked checks' problem."""
    from nnbench.mlp import MLP
    from nnbench.seeding import initial_weights, seed_rngs
    from nnbench.train import train

    data = _data()
    model = MLP((data.n_features, 8, data.n_classes), output="softmax", dtype=dtype)
    return train(model, initial_weights(model, 1).copy(), data.train, cls(**options), _loop(),
                 seed_rngs(1)[1], valid=data.valid, test=data.test)  # fmt: skip


def _loop() -> Any:
    from nnbench.train import Budget, LoopSettings

    return LoopSettings(Budget(max_epochs=2), batch_size=32, points=4)


# The step after which a member's weights turn NaN in check_leaving_member.
POISON_AT = 3


def _stacked(
    cls: type[Optimizer], members: Sequence[Mapping[str, Any]], dtype: str, poison: int | None
) -> list[Any]:
    """The members as one stack; member ``poison``'s weights turn NaN after step
    :data:`POISON_AT` (the stack trains the rows of the array it is given)."""
    from nnbench.mlp import MLP
    from nnbench.seeding import initial_weights, seed_rngs
    from nnbench.train import train_stack

    data = _data()
    model = MLP((data.n_features, 8, data.n_classes), output="softmax", dtype=dtype)
    thetas = np.stack([initial_weights(model, 1)] * len(members))

    def beat(iteration: int) -> None:
        if poison is not None and iteration == POISON_AT:
            thetas[poison] = np.nan

    with np.errstate(invalid="ignore", over="ignore"):
        return train_stack(model, thetas, data.train, [cls(**m) for m in members], _loop(),
                           seed_rngs(1)[1], valid=data.valid, test=data.test,
                           heartbeat=beat)  # fmt: skip


def stack_settings(cls: type[Optimizer]) -> list[list[dict[str, Any]]]:
    """The stacks the stacked checks train: each a list of members' options.

    The first: the defaults; every number option at another value its range
    admits; each searched option at two points inside its space. Then, for
    every other option (a choice, a flag, an integer: one value per stack),
    each of its other values, with the numbers varied the same way.
    """
    numbers = {k: o for k, o in cls.options.items() if o.value_kind is FLOAT and not o.optional}
    varied: list[dict[str, Any]] = [{}, {k: other_value(o) for k, o in numbers.items()}]
    searched = {k: o.search for k, o in numbers.items() if o.search is not None}
    for u in (0.3, 0.7):
        varied.append(
            {k: o.convert(space.round(space.value(u))) for k, o in numbers.items()
             if (space := searched.get(k)) is not None}
        )  # fmt: skip
    stacks = [varied]
    for key, opt in cls.options.items():
        if key in numbers:
            continue
        for value in cls.check_values.get(key, _other_values(opt)):
            stacks.append([{**m, key: value} for m in varied])
    return stacks


def _other_values(opt: Option) -> list[Any]:
    """Each valid value but the default of an option that is not a number."""
    if opt.choices:
        return [c for c in opt.choices if c != opt.default]
    try:
        return [other_value(opt)]
    except ValueError:
        return []


def _same_run(alone: Any, stacked: Any, where: str) -> None:
    assert (stacked.status, stacked.message) == (alone.status, alone.message), (
        f"{where}: the stack ended {stacked.status} ({stacked.message!r}), alone "
        f"{alone.status} ({alone.message!r})"
    )
    assert (stacked.n_iter, stacked.n_grad_evals) == (alone.n_iter, alone.n_grad_evals), (
        f"{where}: {stacked.n_iter} steps and {stacked.n_grad_evals} gradients stacked, "
        f"{alone.n_iter} and {alone.n_grad_evals} alone"
    )
    assert len(stacked.rows) == len(alone.rows), f"{where}: another number of evaluations"
    for a, b in zip(alone.rows, stacked.rows):
        for key, value in a.items():
            if key.endswith("seconds"):
                continue
            same = value == b[key] or (math.isnan(value) and math.isnan(b[key]))
            assert same, (
                f"{where}: {key} at iteration {a['iteration']}: {b[key]!r} stacked, {value!r} alone"
            )
    mine, theirs = stacked.theta, alone.theta
    differ = np.flatnonzero(~((mine == theirs) | (np.isnan(mine) & np.isnan(theirs))))
    if len(differ):
        raise AssertionError(
            f"{where}: the final weights differ in {len(differ)} of {theirs.size} places "
            f"(first: {mine[differ[0]]!r} stacked, {theirs[differ[0]]!r} alone)"
        )


def _members(cls: type[Optimizer]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for stack in stack_settings(cls):
        yield "; ".join(_text(m) for m in stack), stack


def _text(options: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v!r}" for k, v in sorted(options.items())) or "defaults"


# -- the checks ------------------------------------------------------------------------------


def check_options_validated(optimizer: str | type[Optimizer]) -> None:
    cls = _class(optimizer)
    made = cls()
    assert made.label == cls.name, f"the defaults give the label {made.label!r}, not {cls.name!r}"
    try:
        cls(no_such_option=1)
    except ConfigError:
        pass
    else:
        raise AssertionError("an unknown option was accepted, not refused")
    for key, opt in cls.options.items():
        for bad in _out_of_range(opt):
            try:
                cls(**{key: bad})
            except ConfigError:
                continue
            raise AssertionError(f"option {key}={bad!r} is outside its range but was accepted")
        for value in cls.check_values.get(key, _other_values(opt)):
            label = cls(**{key: value}).label
            assert key in label, f"option {key}={value!r} does not show in the label {label!r}"


def _out_of_range(opt: Option) -> list[Any]:
    """Values the option's declaration refuses: another kind, another choice, a
    bound that is open or one past a closed one, nothing for a required one."""
    bad: list[Any] = ["no such choice"] if opt.choices else []
    if opt.value_kind is not STR and not opt.choices:
        bad.append("not a value")
    if opt.low is not None:
        bad.append(opt.low if opt.low_open else opt.low - 1)
    if opt.high is not None:
        bad.append(opt.high if opt.high_open else opt.high + 1)
    if not opt.optional:
        bad.append(None)
    return bad


def check_deterministic(optimizer: str | type[Optimizer]) -> None:
    cls = _class(optimizer)
    options = dict(cls.tuning_default)
    _same_run(_run(cls, options), _run(cls, options), "a second run of one setting")


def check_lowers_the_loss(optimizer: str | type[Optimizer]) -> None:
    from nnbench.mlp import MLP
    from nnbench.seeding import initial_weights, seed_rngs
    from nnbench.train import Budget, LoopSettings, train

    cls = _class(optimizer)
    data = _data()
    model = MLP((data.n_features, 16, data.n_classes))
    result = train(model, initial_weights(model, seed=3), data.train, cls(**cls.tuning_default),
                   LoopSettings(Budget(max_iter=150), batch_size=30, every=50),
                   seed_rngs(3)[1], valid=data.valid)  # fmt: skip
    first, last = result.rows[0], result.rows[-1]
    assert result.status == "completed", f"the run ended {result.status}: {result.message}"
    assert last["train_cost"] < 0.7 * first["train_cost"], (
        f"at {dict(cls.tuning_default) or 'its defaults'} the training cost went from "
        f"{first['train_cost']:.4g} to {last['train_cost']:.4g}, not below 70% of it; "
        "declare tuning_default, the options that give it a fair chance"
    )
    assert last["val_accuracy"] > 0.6, f"validation accuracy {last['val_accuracy']:.3f} <= 0.6"


def check_stacked_equals_alone(optimizer: str | type[Optimizer]) -> None:
    cls = _class(optimizer)
    if not cls.can_stack():
        return
    for dtype in ("float32", "float64"):
        for text, members in _members(cls):
            stacked = _stacked(cls, members, dtype, poison=None)
            for options, st in zip(members, stacked):
                where = f"{dtype}, member {_text(options)} of a stack of [{text}]"
                _same_run(_run(cls, options, dtype), st, where)


def check_state_per_member(optimizer: str | type[Optimizer]) -> None:
    cls = _class(optimizer)
    if not cls.can_stack():
        return
    members = stack_settings(cls)[0]
    stacked = _stacked(cls, members, "float32", poison=None)
    for options, st in zip(members, stacked):
        alone = _run(cls, options, "float32").optimizer_state
        assert set(st.optimizer_state) == set(alone), (
            f"member {_text(options)}: state keys {sorted(st.optimizer_state)} out of "
            f"the stack, {sorted(alone)} alone"
        )
        for key, value in alone.items():
            mine = st.optimizer_state[key]
            same = np.array_equal(np.asarray(mine, dtype=float), np.asarray(value, dtype=float),
                                  equal_nan=True)  # fmt: skip
            assert same, f"member {_text(options)}: state {key!r} differs from alone"


def check_leaving_member(optimizer: str | type[Optimizer]) -> None:
    cls = _class(optimizer)
    if not cls.can_stack():
        return
    members = stack_settings(cls)[0]
    stacked = _stacked(cls, members, "float32", poison=1)
    assert stacked[1].status == "diverged" and stacked[1].n_iter >= POISON_AT, (
        f"a member whose weights turned NaN after step {POISON_AT} ended "
        f"{stacked[1].status} after {stacked[1].n_iter} steps, not diverged after it"
    )
    for j, (options, st) in enumerate(zip(members, stacked)):
        if j != 1:
            where = f"member {_text(options)} beside one that left"
            _same_run(_run(cls, options, "float32"), st, where)


CHECKS: tuple[Callable[[Any], None], ...] = (
    check_options_validated,
    check_deterministic,
    check_lowers_the_loss,
    check_stacked_equals_alone,
    check_state_per_member,
    check_leaving_member,
)


def check_optimizer(optimizer: str | type[Optimizer]) -> None:
    """Run every check on ``optimizer`` (a class or a registered name): raise
    ``AssertionError`` naming each check that failed and why, and each of its
    ``expected_failures`` that passed."""
    cls = _class(optimizer)
    problems = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            check(cls)
        except Exception as exc:  # an optimizer that raises fails the check
            if name not in cls.expected_failures:
                text = str(exc) if isinstance(exc, AssertionError) else f"raised {exc!r}"
                problems.append(f"{name}: {text}")
        else:
            if name in cls.expected_failures:
                problems.append(
                    f"{name}: passed, but expected_failures says it fails "
                    f"({cls.expected_failures[name]})"
                )
    if problems:
        raise AssertionError(f"{cls.name}: " + "; ".join(problems))
