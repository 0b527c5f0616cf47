"""The scikit-learn-style classifier."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnbench import MLPClassifier
from nnbench.estimator import FitInterruptedWarning


@parametrize_with_checks([MLPClassifier(random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    # Every check applies; none is skipped. (check_array_api_input skips
    # itself unless SCIPY_ARRAY_API is set: the estimator is numpy-only.)
    check(estimator)


def test_fit_predict_score_and_attributes(synthetic):
    X, y = synthetic.train
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=200, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.score(*synthetic.valid) > 0.9
    proba = clf.predict_proba(synthetic.valid[0])
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert clf.coef_.shape == (clf.model_.n_params,)
    assert [w.shape for w in clf.coefs_] == [(12, 10), (10, 3)]
    assert [b.shape for b in clf.intercepts_] == [(10,), (3,)]
    assert clf.status_ == "completed" and clf.n_iter_ == 200
    assert list(clf.history_["iteration"])[-1] == 200
    loss, grad = clf.model_.loss_and_grad(clf.coef_, X, y)
    assert np.isfinite(loss) and grad.shape == clf.coef_.shape


def test_string_labels_round_trip(synthetic):
    X, y = synthetic.train
    names = np.array(["ant", "bee", "cat"])[y]
    clf = MLPClassifier(max_iter=50, random_state=0).fit(X, names)
    assert set(clf.predict(X)) <= {"ant", "bee", "cat"}


@pytest.mark.parametrize("optimizer", ["gd", "cg", "lbfgsb", "adam"])
def test_views_stay_views_after_training(synthetic, optimizer):
    clf = MLPClassifier(optimizer=optimizer, max_iter=5, random_state=0)
    clf.fit(*synthetic.train)
    views = clf.coefs_ + clf.intercepts_
    assert all(np.shares_memory(v, clf.coef_) for v in views)
    clf.coef_[...] = 0.25  # assignment into the vector reaches every view
    assert all(np.all(v == 0.25) for v in views)
    clf.coefs_[0] += 1  # and a write through a view reaches the vector
    assert np.count_nonzero(clf.coef_ == 1.25) == clf.coefs_[0].size


def test_same_seed_same_weights_and_predictions(synthetic):
    X, y = synthetic.train
    a = MLPClassifier(max_iter=30, random_state=4).fit(X, y)
    b = MLPClassifier(max_iter=30, random_state=4).fit(X, y)
    c = MLPClassifier(max_iter=30, random_state=5).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.coef_, c.coef_)


def test_clone_pipeline_and_cross_validation(synthetic):
    X, y = synthetic.train
    clf = MLPClassifier(
        hidden_layer_sizes=(8,),
        optimizer="adam",
        optimizer_options={"learning_rate": 0.02},
        max_iter=150,
        random_state=0,
    )
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    scores = cross_val_score(make_pipeline(MinMaxScaler(), clf), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8


def test_warm_start_continues_and_coef0_starts(synthetic):
    X, y = synthetic.train
    # full evaluation: a row's cost is the whole training set's, comparable across fits
    clf = MLPClassifier(max_iter=20, warm_start=True, random_state=0, evaluation="full")
    clf.fit(X, y)
    end_of_first = clf.history_["train_cost"].iloc[-1]
    clf.fit(X, y)
    assert clf.history_["train_cost"].iloc[0] == pytest.approx(end_of_first)
    other = MLPClassifier(max_iter=1, coef0=clf.coef_, random_state=9, evaluation="full")
    other.fit(X, y)
    last = clf.history_["train_cost"].iloc[-1]
    assert other.history_["train_cost"].iloc[0] == pytest.approx(last)
    with pytest.raises(ValueError, match="coef0 must be a flat vector of"):
        MLPClassifier(coef0=np.zeros(3)).fit(X, y)


def test_callback_can_stop_the_fit(synthetic):
    calls = []

    def stop_after_two(info):
        calls.append(info["epoch"])
        return len(calls) == 2

    clf = MLPClassifier(max_epochs=10, max_iter=None, callback=stop_after_two, random_state=0)
    clf.fit(*synthetic.train)
    assert clf.status_ == "stopped" and calls == [1.0, 2.0]


def test_ctrl_c_keeps_the_weights_with_a_warning(synthetic):
    def interrupt(info):
        if info["iteration"] >= 8:
            raise KeyboardInterrupt

    clf = MLPClassifier(max_iter=100, eval_every=4, callback=interrupt, random_state=0)
    with pytest.warns(FitInterruptedWarning, match="interrupted after 8 iterations"):
        clf.fit(*synthetic.train)
    assert clf.status_ == "interrupted"
    assert clf.predict(synthetic.valid[0]).shape == (len(synthetic.valid[0]),)
    reference = MLPClassifier(max_iter=8, random_state=0).fit(*synthetic.train)
    np.testing.assert_array_equal(clf.coef_, reference.coef_)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((10, 3)), np.linspace(0, 1, 10), "Unknown label type"),
        (np.zeros((10, 3)), np.arange(9) % 2, "inconsistent numbers of samples"),
        (np.full((10, 3), np.nan), np.arange(10) % 2, "NaN"),
        (np.zeros(10), np.arange(10) % 2, "2D array"),
        (np.zeros((10, 3, 2)), np.arange(10) % 2, "dim 3"),
        (np.zeros((10, 3)), np.zeros(10), "only one class"),
    ],
    ids=["continuous-labels", "length-mismatch", "nan", "1d", "3d", "one-class"],
)
def test_bad_input_raises_value_error_naming_the_problem(X, y, match):
    with pytest.raises(ValueError, match=match):
        MLPClassifier().fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"optimizer": "sgdd"}, "unknown optimizer"),
        ({"optimizer_options": {"learning_rate": -1}}, "learning_rate"),
        ({"optimizer_options": {"momentum": 0.9}}, "unknown option momentum"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "big"}, "hidden_layer_sizes"),
        ({"activation": "gelu"}, "activation"),
        ({"dtype": "int8"}, "dtype"),
        ({"batch_size": -5}, "batch_size"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_epochs": -1.0}, "max_epochs"),
        ({"alpha": -1.0}, "alpha"),
        ({"eval_every": 0}, "eval_every"),
        ({"evaluation": "sometimes"}, "evaluation"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_bad_parameters_raise_value_error(synthetic, params, match):
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(*synthetic.train)


def test_float32_training(synthetic):
    clf = MLPClassifier(dtype="float32", max_iter=100, random_state=0).fit(*synthetic.train)
    assert clf.coef_.dtype == np.float32
    assert clf.score(*synthetic.valid) > 0.8


def test_defaults_agree_with_experiment_files(synthetic):
    """No budget means the post's 100 iterations; the default seed is nnbench's, so
    two default fits are the same fit."""
    from nnbench import settings

    X, y = synthetic.train
    a = MLPClassifier(max_iter=None).fit(X, y)
    b = MLPClassifier(max_iter=None).fit(X, y)
    assert a.n_iter_ == settings.DEFAULTS["max_iter"] == 100
    assert np.array_equal(a.coef_, b.coef_)
    assert MLPClassifier().batch_size == settings.DEFAULTS["batch_size"]


def test_cheap_running_loss_by_default_full_evaluation_on_request(synthetic):
    X, y = synthetic.train
    cheap = MLPClassifier(max_epochs=3, max_iter=None, random_state=0).fit(X, y)
    full = MLPClassifier(max_epochs=3, max_iter=None, random_state=0, evaluation="full")
    full.fit(X, y)
    # the same training: evaluation never changes the weights
    np.testing.assert_array_equal(cheap.coef_, full.coef_)
    assert cheap.history_["train_accuracy"].isna().all()
    assert full.history_["train_accuracy"].notna().all()
    # the running loss of an epoch is close to, not equal to, the cost at its end
    assert cheap.history_["train_cost"].iloc[-1] != full.history_["train_cost"].iloc[-1]
    assert cheap.history_["train_cost"].iloc[-1] == pytest.approx(
        full.history_["train_cost"].iloc[-1], rel=0.5
    )
