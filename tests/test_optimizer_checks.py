"""nnbench.testing.check_optimizer over every registered optimizer, built-in or plugin
(tests/plugin_site holds outside plugins, Lion among them), with no per-name table:
what a check needs to know, the optimizer declares. And the checks catch what they
are for: a stacked update that differs in the last bit, a member's state mixed up, a
loss that does not fall, an option range not enforced."""

import numpy as np
import pytest

from nnbench import optimizers, testing
from nnbench.optimizers import Optimizer, Option
from nnbench.optimizers.base import column
from nnbench.space import LogUniform


@pytest.mark.parametrize("name", sorted(optimizers.available()))
@pytest.mark.parametrize("check", testing.CHECKS, ids=lambda c: c.__name__)
def test_every_registered_optimizer_passes_every_check(name, check):
    cls = optimizers.get(name)
    expected = cls.expected_failures.get(check.__name__.removeprefix("check_"))
    if expected is None:
        check(name)
    else:  # it fails on purpose, and the check sees it
        with pytest.raises(AssertionError):
            check(name)


class GD(Optimizer):
    """Plain GD with a stacked step; the subclasses below each plant one fault."""

    name = "plain"
    summary = "gd"
    options = {
        "learning_rate": Option(0.3, "step", low=0.0, low_open=True, search=LogUniform(0.01, 1.0))
    }
    tuning_default = {"learning_rate": 1.0}

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * grad
        return loss

    def stack_step(self, fun, thetas, state, opts):
        losses, grads = fun(thetas)
        thetas -= column(opts["learning_rate"], grads) * grads
        return losses


class LastBit(GD):
    """The float64 column times float32 gradients: each product rounded once more
    than alone's, so the weights differ in their last bits."""

    def stack_step(self, fun, thetas, state, opts):
        losses, grads = fun(thetas)
        thetas -= opts["learning_rate"] * grads
        return losses


class SharedState(GD):
    """A counter kept once for the stack (declared shared), where alone each member
    keeps its own."""

    shared_state = ("seen",)

    def init(self, theta):
        return {"seen": np.zeros(1)}

    def step(self, fun, theta, state):
        state["seen"] += 1
        return super().step(fun, theta, state)

    def stack_init(self, thetas, opts):
        return {"seen": np.zeros(1)}

    def stack_step(self, fun, thetas, state, opts):
        state["seen"] += len(thetas)
        return super().stack_step(fun, thetas, state, opts)


class Lazy(GD):
    """Steps of a millionth of the gradient: the loss barely moves."""

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        theta -= 1e-6 * grad
        return loss

    stack_step = Optimizer.stack_step  # alone only


class Unchecked(GD):
    """Options taken as given: a learning rate of 0, outside the declared range,
    is accepted."""

    def _check(self, key, opt, value):
        return value


class MisShared(GD):
    """Heavy-ball momentum whose velocities are declared shared by mistake: equal
    to alone while the stack stays whole, but a shared entry is not shrunk when a
    member leaves, so the members after it take the wrong velocities."""

    shared_state = ("v",)

    def init(self, theta):
        return {"v": np.zeros_like(theta)}

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        state["v"] *= 0.9
        state["v"] += grad
        theta -= self.config["learning_rate"] * state["v"]
        return loss

    def stack_init(self, thetas, opts):
        return {"v": np.zeros_like(thetas)}

    def stack_step(self, fun, thetas, state, opts):
        losses, grads = fun(thetas)
        v = state["v"][: len(thetas)]
        v *= 0.9
        v += grads
        thetas -= column(opts["learning_rate"], grads) * v
        return losses


class ListState(MisShared):
    """Velocities kept as a list, one array a member: the stack refuses a per-run
    entry that is not an array with a row per run, naming it."""

    shared_state = ()

    def stack_init(self, thetas, opts):
        return {"v": [np.zeros_like(row) for row in thetas]}


def test_a_per_run_state_entry_must_have_a_row_per_run():
    with pytest.raises(AssertionError, match=r"raised ValueError.*'v' is not an array with a row"):
        testing.check_optimizer(ListState)


@pytest.mark.parametrize(
    "cls, check, words",
    [
        (LastBit, testing.check_stacked_equals_alone, "float32, .*: .* stacked, .* alone"),
        (SharedState, testing.check_state_per_member, "state 'seen' differs"),
        (Lazy, testing.check_lowers_the_loss, "not below 70%"),
        (Unchecked, testing.check_options_validated, "outside its range but was accepted"),
        (MisShared, testing.check_leaving_member, "beside one that left"),
    ],
)
def test_each_check_catches_the_fault_it_is_for(cls, check, words):
    testing.check_optimizer(GD)  # the plain form passes everything
    with pytest.raises(AssertionError, match=words):
        check(cls)
    with pytest.raises(AssertionError, match=f"{check.__name__.removeprefix('check_')}: "):
        testing.check_optimizer(cls)


def test_an_expected_failure_that_passes_is_reported():
    class Declared(GD):
        expected_failures = {"lowers_the_loss": "said to fail"}

    with pytest.raises(AssertionError, match="passed, but expected_failures says it fails"):
        testing.check_optimizer(Declared)


def test_the_stacks_vary_every_number_and_try_every_other_choice():
    stacks = testing.stack_settings(optimizers.get("momentum"))
    numbers = stacks[0]
    assert len({m.get("learning_rate") for m in numbers}) == len(numbers)  # all differ
    assert any("momentum_decay" in m for m in numbers)  # an unsearched number varies too
    assert [s[0].get("form") for s in stacks[1:]] == ["classical"]
