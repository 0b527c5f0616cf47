"""Stacked trials: K runs trained as one computation equal the same runs alone, bit for bit."""

import math

import numpy as np
import pytest

from nnbench import mlp, optimizers, testing
from nnbench import settings as schema
from nnbench.data import make_synthetic
from nnbench.mlp import MLP
from nnbench.optimizers import first_order
from nnbench.optimizers.base import Stack
from nnbench.seeding import initial_weights, seed_rngs
from nnbench.status import Status
from nnbench.train import Budget, LoopSettings, stackable, train, train_stack


# Settings that differ in numbers across a stack (what a tuning study searches), as
# nnbench.testing draws them from an optimizer's declared options; every registered
# optimizer's stacked step is checked there (tests/test_optimizer_checks.py).
def members(name):
    return testing.stack_settings(optimizers.get(name))[0]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_samples=400, n_features=20, n_classes=4, seed=3)


def loop_of(**values):
    values.setdefault("batch_size", 32)
    budget = Budget(**{k: values.pop(k) for k in ("max_epochs", "max_iter") if k in values})
    return LoopSettings(budget, **values)


def alone_and_stacked(
    data, name, configs, hidden=(16,), dtype="float32", seed=1, settings=None, **loop
):
    """Each configuration run alone, and all of them as one stack."""
    model = MLP((data.n_features, *hidden, data.n_classes), output="softmax", dtype=dtype)
    opt_name = name.split("-")[0]
    if settings is None:
        settings = loop_of(**loop) if loop else loop_of(max_epochs=3, points=5)
    alone = [
        train(
            model,
            initial_weights(model, seed).copy(),
            data.train,
            optimizers.make(opt_name, dict(c)),
            settings,
            seed_rngs(seed)[1],
            valid=data.valid,
            test=data.test,
        )
        for c in configs
    ]
    start = initial_weights(model, seed)
    stacked = train_stack(
        model,
        np.stack([start] * len(configs)),
        data.train,
        [optimizers.make(opt_name, dict(c)) for c in configs],
        settings,
        seed_rngs(seed)[1],
        valid=data.valid,
        test=data.test,
    )
    return alone, stacked


def assert_same_run(one, stacked):
    assert stacked.status == one.status
    assert stacked.message == one.message
    assert (stacked.n_iter, stacked.n_grad_evals) == (one.n_iter, one.n_grad_evals)
    assert np.array_equal(stacked.theta, one.theta, equal_nan=True)
    assert len(stacked.rows) == len(one.rows)
    timeless = [k for k in one.rows[0] if not k.endswith("seconds")]
    for a, b in zip(one.rows, stacked.rows):
        for key in timeless:
            assert a[key] == b[key] or (math.isnan(a[key]) and math.isnan(b[key])), key
        assert all(math.isnan(b[k]) for k in ("train_seconds", "train_cpu_seconds", "eval_seconds"))
        assert b["stack_seconds"] >= 0


@pytest.mark.parametrize("key", schema.keys_of("loop"))
def test_every_loop_setting_reaches_stacked_trials_as_it_reaches_runs_alone(data, key):
    """Every setting of the schema's loop stage, at a value other than its default:
    a stack of Adam trials equals the trials alone, bit for bit, or the stack
    refuses it (and its runs train alone). A setting added to the schema joins
    this test by itself: one the stack ignores makes its members differ from
    their runs alone. The value must change the run, or the test could not see
    it ignored."""
    base = {"batch_size": 32, "max_epochs": 3, "points": 5}
    if key in schema.BUDGET_KEYS:
        del base["max_epochs"]
    changed = LoopSettings.from_values({**base, key: schema.example(schema.BY_KEY[key])})
    why = stackable(changed)
    if why is not None:
        with pytest.raises(ValueError, match="cannot share a stack"):
            alone_and_stacked(data, "adam", members("adam"), settings=changed)
        return
    alone, stacked = alone_and_stacked(data, "adam", members("adam"), settings=changed)
    for one, st in zip(alone, stacked):
        assert_same_run(one, st)
    default = {**base, key: schema.DEFAULTS[key]}
    if key in schema.BUDGET_KEYS:
        default = {**base, "max_epochs": 3}
    plain = alone_and_stacked(
        data, "adam", members("adam")[:1], settings=LoopSettings.from_values(default)
    )[0]
    assert not same_rows(plain[0], alone[0]), f"{key}'s example value changes nothing here"


def same_rows(a, b):
    timeless = [k for k in a.rows[0] if not k.endswith("seconds")]
    return (
        len(a.rows) == len(b.rows)
        and all(
            np.array_equal([r[k] for r in a.rows], [r[k] for r in b.rows], equal_nan=True)
            for k in timeless
        )
        and np.array_equal(a.theta, b.theta, equal_nan=True)
    )


@pytest.mark.parametrize("hidden", [(), (12, 8), (10, 6, 5)])
def test_stacks_of_any_depth_equal_alone(data, hidden):
    alone, stacked = alone_and_stacked(data, "adam", members("adam"), hidden=hidden)
    for one, st in zip(alone, stacked):
        assert_same_run(one, st)


def test_running_training_cost_tolerance_and_full_batches_equal_alone(data):
    loop = dict(max_iter=40, train_rows="running", tol=0.03, every=5, batch_size="full")
    alone, stacked = alone_and_stacked(data, "gd", members("gd"), **loop)
    assert {r.status for r in alone} >= {Status.CONVERGED}  # a member left early
    for one, st in zip(alone, stacked):
        assert_same_run(one, st)


def test_a_diverging_member_leaves_the_stack_and_the_rest_go_on(data):
    """One member's training cost outgrows 100x its start; another's weights
    overflow, so that its minibatch loss turns NaN: each leaves when alone it
    would end, and the members beside them go on."""
    configs = [{"learning_rate": 0.3}, {"learning_rate": 1e4}, {"learning_rate": 0.05},
               {"learning_rate": 1e300}]  # fmt: skip
    with np.errstate(all="ignore"):
        alone, stacked = alone_and_stacked(data, "gd", configs, max_epochs=3, points=6)
    assert [r.status for r in alone] == [Status.COMPLETED, Status.DIVERGED, Status.COMPLETED,
                                         Status.DIVERGED]  # fmt: skip
    assert "training cost" in alone[1].message and "minibatch loss" in alone[3].message
    assert stacked[1].n_iter < stacked[0].n_iter
    for one, st in zip(alone, stacked):
        assert_same_run(one, st)


def test_l2_penalty_and_sigmoid_outputs_equal_alone(data):
    model = MLP((data.n_features, 9, data.n_classes), "tanh", "sigmoid", l2=0.01)
    thetas = np.stack([initial_weights(model, s) for s in (1, 2, 3)])
    grads = np.empty_like(thetas)
    X, y = data.train[0][:50].astype(model.dtype), data.train[1][:50]
    losses = model.losses_and_grads(thetas, X, y, grads)
    for j in range(3):
        loss, grad = model.loss_and_grad(thetas[j], X, y)
        assert loss == losses[j]
        assert np.array_equal(grad, grads[j])
    assert model.evaluate_members(thetas, *data.valid) == [
        model.evaluate(t, *data.valid) for t in thetas
    ]


def test_options_that_select_other_code_cannot_share_a_stack():
    blog, classical = (optimizers.make("momentum", {"form": f}) for f in ("blog", "classical"))
    with pytest.raises(ValueError, match="option form differs"):
        Stack([blog, classical])
    with pytest.raises(ValueError, match="no vectorised step"):
        Stack([optimizers.make("cg"), optimizers.make("cg")])
    assert not optimizers.get("lbfgsb").can_stack()
    assert all(cls.can_stack() for cls in first_order.BUILTINS)


def test_a_time_budget_cannot_be_stacked(data):
    model = MLP((data.n_features, 4, data.n_classes))
    loop = LoopSettings(Budget(max_seconds=1.0))
    with pytest.raises(ValueError, match="budget in seconds"):
        train_stack(
            model,
            np.stack([initial_weights(model, 1)] * 2),
            data.train,
            [optimizers.make("gd")] * 2,
            loop,
            seed_rngs(1)[1],
        )


def test_evaluation_in_groups_of_members_gives_the_same_numbers(data, monkeypatch):
    model = MLP((data.n_features, 16, data.n_classes), output="softmax")
    thetas = np.stack([initial_weights(model, s) for s in range(1, 8)])
    whole = model.evaluate_members(thetas, *data.valid)
    n = len(data.valid[1])
    monkeypatch.setattr(mlp, "EVAL_ACTIVATIONS", 16 * n * 2)  # groups of 2 members
    assert model.evaluate_members(thetas, *data.valid) == whole
    assert whole == [model.evaluate(t, *data.valid) for t in thetas]


def test_each_member_leaves_with_its_own_optimizer_state(data):
    """What diagnostics read: a member's state is the state its run alone ends with."""
    model = MLP((data.n_features, 8, data.n_classes), dtype="float32")
    configs = [{"learning_rate": 1e-3}, {"learning_rate": 1e4}, {"learning_rate": 3e-2}]
    loop = loop_of(max_epochs=2, points=4)
    alone = [
        train(model, initial_weights(model, 1), data.train, optimizers.make("adam", c), loop,
              seed_rngs(1)[1])
        for c in configs
    ]  # fmt: skip
    stacked = train_stack(
        model,
        np.stack([initial_weights(model, 1)] * 3),
        data.train,
        [optimizers.make("adam", c) for c in configs],
        loop,
        seed_rngs(1)[1],
    )
    for one, st in zip(alone, stacked):
        assert one.optimizer_state.keys() == st.optimizer_state.keys()
        for key, value in one.optimizer_state.items():
            assert np.array_equal(value, st.optimizer_state[key]), key
    gd = [{"learning_rate": 0.1, "learning_rate_decay": d} for d in (0.9, 0.99)]
    alone_gd, stacked_gd = alone_and_stacked(data, "gd", gd, max_iter=5, every=5)
    lrs = [r.optimizer_state["lr"] for r in stacked_gd]  # a column's number, as a float
    assert lrs == [r.optimizer_state["lr"] for r in alone_gd]
    assert all(type(lr) is float for lr in lrs) and lrs[0] < lrs[1] < 0.1


def test_runs_that_differ_in_more_than_their_numbers_cannot_train_together(data):
    from nnbench.build import build_run, run_values, train_together

    splits = {"train": data.train, "valid": data.valid, "test": data.test}

    def run(**given):
        values = run_values(**{"hidden": [8], "max_iter": 10, **given})
        return build_run(values, "gd", splits, data.n_classes, {"learning_rate": 0.1})

    with pytest.raises(ValueError, match="start weights, minibatch order"):
        train_together([run(seed=1), run(seed=2)])
    with pytest.raises(ValueError, match="loop settings"):
        train_together([run(seed=1), run(seed=1, max_iter=20)])
    with pytest.raises(ValueError, match="network"):
        train_together([run(seed=1), run(seed=1, dtype="float32")])
