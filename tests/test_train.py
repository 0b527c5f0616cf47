"""The training loop: fairness, determinism, budgets, schedules and stops."""

import copy

import numpy as np
import pytest

from nnbench import optimizers
from nnbench import train as train_mod
from nnbench.mlp import MLP
from nnbench.optimizers import Optimizer, Option
from nnbench.optimizers.base import Stack
from nnbench.seeding import initial_weights, seed_rngs
from nnbench.train import (
    METRICS,
    Budget,
    LoopSettings,
    minibatches,
    resolve_batch_size,
    train,
)

LOOP_KEYS = {*train_mod.LOOP_KEYS, "budget", "divergence_factor"}
TRAIN_ARGS = {"valid", "test", "callback", "heartbeat"}  # train()'s own keyword arguments


class Spy(Optimizer):
    """Plain GD that records the labels of every minibatch it is handed."""

    name = "spy"
    options = {
        "learning_rate": Option(0.5, "step size", low=0.0, low_open=True),
        "raise_at": Option(0, "raise KeyboardInterrupt at this step (0: never)", low=0),
    }

    def init(self, theta):
        return {"batches": [], "t": 0}

    def step(self, fun, theta, state):
        state["t"] += 1
        if state["t"] == self.config["raise_at"]:
            raise KeyboardInterrupt
        state["batches"].append(fun.y.copy())
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * grad
        return loss


def run(ds, optimizer, seed=0, hidden=(8,), **kwargs):
    """One run on ``ds``: loop settings and train()'s own arguments from ``kwargs``."""
    model = MLP((ds.n_features, *hidden, ds.n_classes))
    theta = initial_weights(model, seed)
    loop = {k: kwargs.pop(k) for k in list(kwargs) if k in LOOP_KEYS or k not in TRAIN_ARGS}
    loop.setdefault("budget", Budget(max_iter=20))
    loop.setdefault("batch_size", 25)
    loop.setdefault("every", "epoch")
    return train(
        model,
        theta,
        ds.train,
        optimizer,
        LoopSettings(**loop),
        seed_rngs(seed)[1],
        valid=ds.valid,
        **kwargs,
    )


def test_same_seed_same_start_and_same_minibatches_for_every_optimizer(synthetic):
    model = MLP((synthetic.n_features, 8, synthetic.n_classes))
    assert np.array_equal(initial_weights(model, 5), initial_weights(model, 5))
    a = run(synthetic, Spy(), seed=5)
    b = run(synthetic, Spy(learning_rate=0.01), seed=5)
    assert len(a.optimizer_state["batches"]) == 20
    for ya, yb in zip(a.optimizer_state["batches"], b.optimizer_state["batches"]):
        np.testing.assert_array_equal(ya, yb)
    c = run(synthetic, Spy(), seed=6)
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(a.optimizer_state["batches"], c.optimizer_state["batches"])
    )


@pytest.mark.parametrize("name", ["adam", "cg", "momentum"])
def test_a_rerun_gives_bitwise_identical_metrics(synthetic, name):
    a = run(synthetic, optimizers.make(name), seed=2, every=5)
    b = run(synthetic, optimizers.make(name), seed=2, every=5)
    timeless = [k for k in METRICS if not k.endswith("seconds")]
    assert a.frame()[timeless].equals(b.frame()[timeless])
    assert np.array_equal(a.theta, b.theta)


def test_rows_have_every_metric_and_a_start_and_end_row(synthetic):
    result = run(synthetic, Spy(), budget=Budget(max_iter=35), every=10, test=synthetic.test)
    frame = result.frame()
    assert list(frame.columns) == list(METRICS)
    assert frame["iteration"].tolist() == [0, 10, 20, 30, 35]
    assert frame["grad_evals"].tolist() == [0, 10, 20, 30, 35]
    n_train = len(synthetic.train[0])  # 180 rows, 7 batches of 25 per pass
    assert frame["samples"].iloc[-1] == 35 * 25
    assert frame["epoch"].iloc[-1] == pytest.approx(5.0)  # 35 iterations = 5 passes of 7
    assert n_train // 25 == 7
    assert frame["val_cost"].notna().all()
    # the test split at the last point only, by default; at every one with test_curve
    assert frame["test_accuracy"].notna().tolist() == [False] * 4 + [True]
    curve = run(
        synthetic, Spy(), budget=Budget(max_iter=35), every=10, test=synthetic.test, test_curve=True
    ).frame()
    assert curve["test_accuracy"].notna().all()
    assert curve["test_accuracy"].iloc[-1] == frame["test_accuracy"].iloc[-1]
    assert np.all(np.diff(frame["train_seconds"]) >= 0)


def test_without_a_test_set_test_metrics_are_missing(synthetic):
    frame = run(synthetic, Spy()).frame()
    assert frame["test_accuracy"].isna().all()


def test_epoch_schedule_evaluates_at_the_end_of_every_pass(synthetic):
    frame = run(synthetic, Spy(), budget=Budget(max_epochs=3), every="epoch").frame()
    assert frame["epoch"].tolist() == [0, 1, 2, 3]
    assert frame["iteration"].tolist() == [0, 7, 14, 21]


def test_budget_in_gradient_evaluations(synthetic):
    result = run(synthetic, optimizers.make("cg"), budget=Budget(max_grad_evals=50))
    assert 50 <= result.n_grad_evals < 50 + 40  # stops after the step that crosses it
    assert result.rows[-1]["grad_evals"] == result.n_grad_evals


def test_budget_in_seconds_stops_the_run(synthetic):
    result = run(synthetic, Spy(), budget=Budget(max_iter=10_000, max_seconds=1e-9))
    assert result.n_iter == 1 and result.status == "completed"


def test_training_time_excludes_evaluation(synthetic, monkeypatch):
    """A fake clock: each step costs 1 s, each evaluation 100 s."""
    now = [0.0]
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: now[0])

    class OneSecond(Spy):
        def step(self, fun, theta, state):
            now[0] += 1
            return super().step(fun, theta, state)

    model = MLP((synthetic.n_features, 8, synthetic.n_classes))
    real_evaluate = model.evaluate_members

    def slow_evaluate(*args):
        now[0] += 50  # train and validation: 100 s per evaluation point
        return real_evaluate(*args)

    model.evaluate_members = slow_evaluate
    result = train(
        model,
        initial_weights(model, 0),
        synthetic.train,
        OneSecond(),
        LoopSettings(Budget(max_iter=20), batch_size=25, every=10),
        seed_rngs(0)[1],
        valid=synthetic.valid,
    )
    assert [r["train_seconds"] for r in result.rows] == [0, 10, 20]
    assert [r["eval_seconds"] for r in result.rows] == [100, 200, 300]


def test_batch_size_as_a_fraction_and_as_a_count():
    assert resolve_batch_size(0.1, 180) == 18
    assert resolve_batch_size(50, 180) == 50
    assert resolve_batch_size(500, 180) == 180  # at most all rows
    assert resolve_batch_size(1.0, 180) == 1  # 1 is a count, as in the post
    assert resolve_batch_size("full", 180) == 180  # the whole training set
    for bad in (0, -3, 2.5, float("nan"), "50", True):
        with pytest.raises(ValueError, match="batch_size"):
            resolve_batch_size(bad, 180)


def test_minibatches_drop_the_remainder_and_grow_to_full_batch():
    rng = np.random.default_rng(0)
    gen = minibatches(100, 30, rng, growth=2.0)
    sizes = [(len(idx), p) for idx, p, _, _ in (next(gen) for _ in range(6))]
    # pass 0: three batches of 30 (10 rows dropped); pass 1: one of 60; then full batch
    assert sizes == [(30, 0), (30, 0), (30, 0), (60, 1), (100, 2), (100, 3)]
    gen = minibatches(10, 3, np.random.default_rng(1))
    seen = np.concatenate([next(gen)[0] for _ in range(3)])
    assert len(set(seen.tolist())) == 9  # a permutation, without repeats within a pass


def test_tol_stops_a_converged_run(synthetic):
    result = run(synthetic, Spy(learning_rate=1e-9), every=1, tol=1e-3)
    assert result.status == "converged" and result.n_iter == 1


def test_divergence_ends_the_run_with_a_status(synthetic):
    result = run(
        synthetic,
        optimizers.make("gd", {"learning_rate": 1e4}),
        hidden=(8, 8),
        every=1,
        budget=Budget(max_iter=200),
    )
    assert result.status == "diverged"
    assert "cost" in result.message


def test_a_non_finite_loss_is_divergence(synthetic):
    class Explode(Spy):
        def step(self, fun, theta, state):
            theta[:] = np.nan
            return float("nan")

    result = run(synthetic, Explode())
    assert result.status == "diverged" and result.n_iter == 1


def test_the_callback_can_stop_the_run(synthetic):
    seen = []

    def callback(info):
        seen.append(info["iteration"])
        assert info["theta"].shape == (initial_weights(MLP((12, 8, 3)), 0).shape)
        return info["iteration"] >= 10

    result = run(synthetic, Spy(), every=5, callback=callback)
    assert result.status == "stopped" and seen == [5, 10] and result.n_iter == 10


def test_ctrl_c_keeps_the_weights_and_rows(synthetic):
    result = run(synthetic, Spy(raise_at=8), every=3)
    assert result.status == "interrupted"
    assert result.n_iter == 7 and [r["iteration"] for r in result.rows] == [0, 3, 6]
    # the weights are those after 7 steps: rerun 7 steps uninterrupted and compare
    reference = run(synthetic, Spy(), budget=Budget(max_iter=7))
    np.testing.assert_array_equal(result.theta, reference.theta)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(synthetic):
    """Continuing from saved weights and optimizer state, with the same batch stream."""
    model = MLP((synthetic.n_features, 8, synthetic.n_classes))
    opt = optimizers.make("adam", {"learning_rate": 0.01})
    whole = train(
        model,
        initial_weights(model, 0),
        synthetic.train,
        opt,
        LoopSettings(Budget(max_iter=14), batch_size=25),
        seed_rngs(0)[1],
    )
    # The same 14 steps, driven by hand in two halves through one state.
    theta = initial_weights(model, 0)[None].copy()  # a run is a stack of one
    stepper = Stack([opt])
    state = stepper.start(theta)
    fun = train_mod.BatchObjective(model)
    gen = minibatches(len(synthetic.train[0]), 25, seed_rngs(0)[1])
    X, y = synthetic.train[0].astype(np.float64), synthetic.train[1]
    for _ in range(2):  # two halves of 7 steps, resumed from a saved copy
        saved = copy.deepcopy((theta, state))
        theta, state = saved[0], saved[1]
        for _ in range(7):
            idx = next(gen)[0]
            fun.X, fun.y = X[idx], y[idx]
            stepper.update(fun, theta, state)
    np.testing.assert_array_equal(theta[0], whole.theta)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every": 0}, r"\[eval\] every"),
        ({"every": "pass"}, r"\[eval\] every"),
        ({"batch_growth": 0.5}, "batch_growth"),
        ({"tol": -1.0}, "tol"),
        ({"patience": 3}, "unknown loop setting"),  # never dropped
    ],
)
def test_bad_loop_settings_are_value_errors(synthetic, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(synthetic, Spy(), **kwargs)


def test_a_budget_is_required_and_checked():
    with pytest.raises(ValueError, match="needs a budget"):
        Budget()
    with pytest.raises(ValueError, match="max_iter"):
        Budget(max_iter=0)


def test_points_are_spread_evenly_over_an_iteration_budget(synthetic):
    frame = run(synthetic, Spy(), budget=Budget(max_iter=100), every=None, points=20).frame()
    assert frame["iteration"].tolist() == list(range(0, 101, 5))


def test_points_on_an_epoch_budget_and_log_spacing(synthetic):
    # 7 batches a pass: thresholds at 0.3, 0.6, ... epochs fall between batches
    frame = run(synthetic, Spy(), budget=Budget(max_epochs=3), every=None, points=10).frame()
    epochs = frame["epoch"].tolist()
    assert len(epochs) == 11 and epochs[0] == 0 and epochs[-1] == pytest.approx(3)
    thresholds = [0.3 * k for k in range(1, 11)]
    # each evaluation is the first step at or past its threshold
    for e, t in zip(epochs[1:], thresholds):
        assert t - 1e-9 <= e < t + 1 / 7 + 1e-9
    frame = run(
        synthetic, Spy(), budget=Budget(max_iter=1000), every=None, points=5, spacing="log"
    ).frame()
    # 1%, 3.2%, 10%, 31.6%, 100% of 1000 iterations
    assert frame["iteration"].tolist() == [0, 10, 32, 100, 317, 1000]


def test_training_metrics_on_a_fixed_subset(synthetic):
    model = MLP((synthetic.n_features, 8, synthetic.n_classes))
    result = run(synthetic, Spy(), budget=Budget(max_iter=5), train_rows=40)
    idx = np.sort(np.random.default_rng(train_mod.TRAIN_SUBSET_SEED).choice(180, 40, replace=False))
    X, y = synthetic.train
    cost, acc = model.evaluate(result.theta, X[idx], y[idx])
    assert result.rows[-1]["train_cost"] == pytest.approx(cost, rel=1e-12)
    assert result.rows[-1]["train_accuracy"] == acc
    # every run sees the same subset: the same start weights give the same first row
    again = run(synthetic, Spy(learning_rate=0.1), budget=Budget(max_iter=5), train_rows=40)
    assert again.rows[0]["train_cost"] == result.rows[0]["train_cost"]


def test_running_evaluation_is_the_mean_minibatch_loss(synthetic):
    losses = []

    class Recording(Spy):
        def step(self, fun, theta, state):
            loss = super().step(fun, theta, state)
            losses.append(loss)
            return loss

    result = run(synthetic, Recording(), budget=Budget(max_iter=14), every=7, train_rows="running")
    rows = result.rows
    assert [r["iteration"] for r in rows] == [0, 7, 14]
    assert rows[1]["train_cost"] == pytest.approx(np.mean(losses[:7]))
    assert rows[2]["train_cost"] == pytest.approx(np.mean(losses[7:]))
    assert np.isnan(rows[2]["train_accuracy"])
    # the validation set is scored all the same: the running loss replaces the training pass only
    full = run(synthetic, Spy(), budget=Budget(max_iter=14), every=7)
    assert rows[2]["val_accuracy"] == full.rows[2]["val_accuracy"]


def test_full_batch_takes_every_row_in_order(synthetic):
    seen = []

    class Look(Spy):
        def step(self, fun, theta, state):
            seen.append(fun.X)
            return super().step(fun, theta, state)

    result = run(synthetic, Look(), batch_size="full", budget=Budget(max_iter=3))
    assert result.rows[-1]["epoch"] == 3 and result.rows[-1]["batch_rows"] == 180
    np.testing.assert_array_equal(seen[0], synthetic.train[0].astype(np.float64))


def test_the_heartbeat_sees_every_step(synthetic):
    beats = []
    run(synthetic, Spy(), budget=Budget(max_iter=9), heartbeat=beats.append)
    assert beats == list(range(1, 10))
