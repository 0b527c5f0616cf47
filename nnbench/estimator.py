"""A scikit-learn-style classifier on top of the training loop.

The post's ``NN`` class under scikit-learn's names and conventions: it
clones, fits in a ``Pipeline`` and under ``cross_val_score``, and passes
scikit-learn's estimator checks. ``max_iter`` counts epochs, as in
scikit-learn's ``MLPClassifier`` (solvers sgd and adam); the post's budget
of minibatch updates is ``max_steps``. Its weights are one flat vector,
``coef_``, with the per-layer ``coefs_`` and ``intercepts_`` as views into it.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nnbench import optimizers
from nnbench.build import build_run, run_values
from nnbench.errors import ConfigError
from nnbench.mlp import MLP
from nnbench.settings import BUDGET_KEYS, BY_KEY, DEFAULTS, RUN_SETTINGS
from nnbench.status import Status

# The estimator's parameters: every run setting a fit uses (the schema's
# ``estimator`` names), then its own. Two budget settings take other names
# here, because scikit-learn's ``max_iter`` counts epochs: the schema's
# ``max_epochs`` is ``max_iter``, and its ``max_iter`` (minibatch updates, the
# post's maxiter) is ``max_steps``. Experiment files keep the schema's names
# and meanings; only the estimator maps them.
NAMES_HERE = {"max_epochs": "max_iter", "max_iter": "max_steps"}
# Defaults are the schema's, but for these:
DEFAULTS_HERE = {
    "every": "epoch",  # one row of history_ per pass, as scikit-learn's loss_curve_
    # no update limit unless asked: a default one would cut max_iter epochs short
    "max_iter": None,
}
# With no limit given at all, a fit runs scikit-learn's default max_iter, in epochs.
DEFAULT_MAX_ITER = 200
# scikit-learn's batch_size="auto", min(200, n_samples), accepted under its name.
AUTO_BATCH = 200
# What a budget setting counts, for the docs and warnings, under its name here.
DOCS_HERE = {
    "max_epochs": "epochs: passes over the training set, as scikit-learn's max_iter for its "
    "sgd and adam solvers (a fraction is allowed); with no limit given at all, "
    f"{DEFAULT_MAX_ITER}, scikit-learn's default",
    "max_iter": "minibatch updates, the post's maxiter: max_steps=100 is its budget",
    "every": 'instead of points: every N minibatch updates, or "epoch"',
}
# Parameters this class had under another meaning: an old call fails, naming the new one.
RENAMED = {"max_epochs": "max_iter (which counts epochs)"}
SETTINGS = {
    s.key: NAMES_HERE.get(s.key, s.estimator or s.key)
    for s in RUN_SETTINGS
    if s.estimator is not None
}
# The budget's parameters in the schema's order of budget_axis: the first one
# given is the fit's length (its evaluation points are spread over it).
LIMITS = ("max_epochs", "max_iter", "max_grad_evals", "max_seconds")
assert sorted(LIMITS) == sorted(BUDGET_KEYS), "a new budget setting needs its place here"
UNITS = {"max_epochs": "epochs", "max_iter": "minibatch updates",
         "max_grad_evals": "gradient evaluations", "max_seconds": "training seconds"}  # fmt: skip
# An epoch count is a float sum: the loop takes one within this as reached
# (train.Budget.exhausted), and so do the warnings and n_iter_ here.
EPOCH_ROUNDING = 1e-12
OWN = {  # name: (default, doc)
    "optimizer": ("gd", "str: a registered optimizer name (`nnbench list`)"),
    "optimizer_options": (None, "dict, optional: the optimizer's options; unknown or invalid "
                          "ones raise ValueError"),
    "coef0": (None, "ndarray, optional: start from these flat weights instead of a random draw"),
    "warm_start": (False, "bool: continue from the previous fit's coef_ when its shape fits"),
    "evaluation": ("running", 'str: what a row of history_ holds. "running" (default, '
                   "scikit-learn's loss_curve_): the mean minibatch loss since the previous "
                   'row, at no extra cost. "full": cost and accuracy on every training row'),
    "callback": (None, "callable, optional: callback(info) -> bool at every evaluation; info "
                 "holds the metrics and theta; True stops the fit"),
    "verbose": (0, "int: print every evaluation when > 0"),
}  # fmt: skip


def _defaults() -> dict[str, Any]:
    out = {name: DEFAULTS_HERE.get(key, DEFAULTS[key]) for key, name in SETTINGS.items()}
    return {**out, **{name: default for name, (default, _) in OWN.items()}}


def _parameter_docs() -> str:
    lines = []
    for key, name in SETTINGS.items():
        setting = BY_KEY[key]
        default = DEFAULTS_HERE.get(key, setting.default)
        doc = DOCS_HERE.get(key, setting.option.doc)
        lines += [
            f"{name} : {setting.option.describe_range()}, default {default!r}",
            f"    {doc[:1].upper() + doc[1:]} (the setting {setting.where}).",
        ]
    for name, (default, doc) in OWN.items():
        kind, _, text = doc.partition(": ")
        text = text[:1].upper() + text[1:]
        lines += [f"{name} : {kind}, default {default!r}", f"    {text}."]
    return "\n".join(lines)


def _parameter_message(message: str) -> str:
    """A schema error reworded with the estimator's parameter names."""
    message = message.removeprefix("settings: ")
    for key, name in SETTINGS.items():
        message = message.replace(f"{BY_KEY[key].where}:", f"{name}:")
    return message


def _budget_message(
    limits: dict[str, Any], ended: dict[str, float], tol: float | None
) -> str | None:
    """Why a fit that a limit ended warns, or None.

    ``limits`` are the run's budget (schema keys, None where unset), ``ended``
    where the fit ended on each of their axes. The first limit given in
    :data:`LIMITS` order is the fit's length: ended before it by another
    limit, the fit was cut short. Ended by it with ``tol`` set, the training
    cost had not settled (scikit-learn's warning at max_iter).
    """
    given = [key for key in LIMITS if limits.get(key) is not None]
    length = given[0]

    def reached(key: str) -> bool:  # as train.Budget.exhausted decides it
        slack = EPOCH_ROUNDING if key == "max_epochs" else 0.0
        return ended[key] >= limits[key] - slack

    def named(key: str) -> str:
        return f"{SETTINGS[key]}={limits[key]:g} ({UNITS[key]})"

    where = f"after {ended['max_epochs']:.4g} epochs, {ended['max_iter']} minibatch updates"
    if not reached(length):
        by = next((key for key in given[1:] if reached(key)), None)
        if by is None:  # nothing reached: cannot happen for a completed run
            return None
        return (
            f"{named(by)} ended the fit {where}, before {named(length)}; raise "
            f"{SETTINGS[by]}, or leave it unset, to reach {SETTINGS[length]}"
        )
    if tol is not None:
        return (
            f"{named(length)} ended the fit {where}, and the training cost had not "
            f"converged (it changed by tol={tol:g} or more between evaluations); raise "
            f"{SETTINGS[length]} or tol"
        )
    return None


class FitInterruptedWarning(UserWarning):
    """``fit`` was stopped by Ctrl-C; the weights reached so far were kept."""


def _seed_from(random_state: Any) -> int:
    """An integer seed from None, an int, a numpy Generator or a RandomState."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**63))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    raise ValueError(
        f"random_state must be None, an int, a numpy Generator or RandomState; got {random_state!r}"
    )


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier trained by any registered optimizer.

    Its parameters are nnbench's run settings (``nnbench config``), under
    scikit-learn's names where it has them (``alpha`` for the L2 penalty,
    ``random_state`` for the seed, ``hidden_layer_sizes``, ``max_iter`` for
    epochs), then its own.

    Parameters
    ----------
    {parameters}

    ``random_state`` may also be None (a fresh seed), a numpy Generator or a
    RandomState; ``batch_size="auto"`` is scikit-learn's, ``min(200, n_samples)``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_params,)
        The flat weight vector.
    coefs_ : list of ndarray of shape (n_in, n_out)
        Per-layer weights, views into ``coef_``.
    intercepts_ : list of ndarray of shape (n_out,)
        Per-layer biases, views into ``coef_``.
    model_ : MLP
        The network; ``model_.loss_and_grad(coef_, X, y)``.
    history_ : pandas.DataFrame
        One row per evaluation; its ``iteration`` column counts minibatch
        updates (the runs' name), ``epoch`` passes.
    status_ : str
        How the fit ended (completed, converged, stopped, diverged, interrupted).
    n_iter_ : int
        Epochs run, a partial last one counted (scikit-learn's meaning); at
        the last evaluation, for a fit interrupted by Ctrl-C.
    n_steps_ : int
        Minibatch updates.
    n_grad_evals_ : int
        Gradient evaluations (scipy's minimisers make several an update).

    Notes
    -----
    **The budget.** ``max_iter`` counts epochs, as in scikit-learn's
    ``MLPClassifier`` with its sgd and adam solvers; ``max_steps`` counts
    minibatch updates (the post's budget is ``max_steps=100``; experiment
    files keep calling it ``max_iter``). Of the limits given (``max_iter``,
    ``max_steps``, ``max_grad_evals``, ``max_seconds``) the first reached ends
    the fit; with none given, a fit runs 200 epochs, scikit-learn's default.
    The first given in that order is the fit's length, the others are caps:
    when one of them ends the fit before the length is reached, ``fit`` warns
    with scikit-learn's ``ConvergenceWarning``, naming it. With ``tol`` set, a
    fit that its length ends before the training cost settles warns too, as
    scikit-learn's does at ``max_iter``; without ``tol`` there is no
    convergence test (a benchmark compares optimizers at equal budgets), and
    reaching the length is silent.

    **The post's defaults, and scikit-learn's.** The network and its training
    default to the 2013 post's: sigmoid hidden units, one-vs-all sigmoid
    outputs (summed cross-entropy), float64, minibatches of 50, plain
    gradient descent (``optimizer="gd"``), no L2 penalty, no tolerance, seed
    1234. scikit-learn's defaults are::

        MLPClassifier(activation="relu", output="softmax", optimizer="adam",
                      optimizer_options={"learning_rate": 0.001},
                      batch_size="auto", alpha=1e-4, init="glorot")

    What still differs (``tests/test_estimator.py`` fits both side by side):
    scikit-learn draws its biases too, where ``init="glorot"`` starts them at
    zero (``coef0`` takes any start weights, scikit-learn's included); its
    Adam adds ``epsilon`` to the uncorrected root of the second moment,
    nnbench's to the corrected one (Kingma and Ba's Algorithm 1), which
    matters only where a gradient is of the order of ``epsilon`` (the
    weights of an input that is always 0, of a dead ReLU unit); it trains on an epoch's last,
    smaller minibatch (``ceil(n / batch_size)`` updates an epoch), where
    nnbench drops it, the post's rule (``floor``: the same when the batch
    size divides the rows); and it stops on its own after 10 epochs without
    a gain of 1e-4 (``tol``, ``n_iter_no_change``), where nnbench's ``tol``
    compares the training cost of consecutive evaluations and is unset.
    """

    def __init__(self, **params: Any) -> None:
        defaults = _defaults()
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            renamed = [f"{old} is now {RENAMED[old]}" for old in unknown if old in RENAMED]
            raise TypeError(
                f"MLPClassifier got unknown parameter(s) {', '.join(unknown)}"
                + (f" ({'; '.join(renamed)})" if renamed else "")
                + f"; it takes {', '.join(defaults)}"
            )
        for name, default in defaults.items():  # stored as given: scikit-learn's rule
            setattr(self, name, params.get(name, default))

    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = (sizes,)
        try:
            hidden = tuple(int(s) for s in sizes)
        except (TypeError, ValueError):
            raise ValueError(
                f"hidden_layer_sizes must be a sequence of positive ints; got {sizes!r}"
            ) from None
        if any(h < 1 for h in hidden) or any(int(s) != s for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be a sequence of positive ints; got {sizes!r}"
            )
        return hidden

    def _values(self, seed: int) -> dict[str, Any]:
        """The run settings of a fit, checked by the schema, named as parameters here."""
        given = {key: getattr(self, name) for key, name in SETTINGS.items()}
        given["hidden"] = self._hidden()
        given["seed"] = seed
        # a fit's full evaluation is on all its rows
        given["train_rows"] = "all" if self.evaluation == "full" else "running"
        if isinstance(given["batch_size"], str) and given["batch_size"] == "auto":
            given["batch_size"] = AUTO_BATCH  # min(200, n): a count is capped at the rows
        for key in BUDGET_KEYS:  # a budget given replaces the default one whole
            if given[key] is None:
                given.pop(key)
        if not any(key in given for key in BUDGET_KEYS):
            # scikit-learn's default, not the schema's 100 updates: max_iter counts epochs here
            given["max_epochs"] = DEFAULT_MAX_ITER
        try:
            return run_values(**given)
        except ConfigError as exc:  # name the estimator's parameter, not the file's key
            raise ValueError(_parameter_message(str(exc))) from None

    def _start_weights(self, model: MLP) -> np.ndarray | None:
        """The previous fit's weights (warm start), ``coef0``, or None: drawn from the seed."""
        previous = getattr(self, "coef_", None) if self.warm_start else None
        if previous is not None and previous.shape == (model.n_params,):
            return previous.astype(model.dtype, copy=True)
        if self.coef0 is not None:
            coef0 = np.asarray(self.coef0)
            if coef0.shape != (model.n_params,):
                raise ValueError(
                    f"coef0 must be a flat vector of {model.n_params} weights for layers "
                    f"{model.layout.sizes}; got shape {coef0.shape}"
                )
            if not np.all(np.isfinite(coef0)):
                raise ValueError("coef0 contains NaN or infinity")
            return coef0.astype(model.dtype, copy=True)
        return None

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on ``X`` of shape (n_samples, n_features) and labels ``y``."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"the training labels hold only one class ({self.classes_[0]!r}); "
                "a classifier needs at least 2 classes"
            )
        if self.optimizer_options is not None and not isinstance(self.optimizer_options, dict):
            raise ValueError(
                f"optimizer_options must be a dict; got {type(self.optimizer_options).__name__}"
            )
        optimizer = optimizers.make(self.optimizer, self.optimizer_options)
        if self.evaluation not in ("running", "full"):
            raise ValueError(f"evaluation must be 'running' or 'full'; got {self.evaluation!r}")
        values = self._values(_seed_from(self.random_state))
        run = build_run(values, optimizer, {"train": (X, y_idx)}, len(self.classes_))
        start = self._start_weights(run.model)
        if start is not None:
            run.theta[...] = start  # in place: theta is what the loop trains

        def on_eval(info: dict[str, Any]) -> bool:
            if self.verbose:
                print(
                    f"step {info['iteration']:6d}  epoch {info['epoch']:7.3f}  "
                    f"cost {info['train_cost']:.6f}  accuracy {info['train_accuracy']:.4f}"
                )
            return bool(self.callback(info)) if self.callback is not None else False

        # The weights are published before training, so that even a Ctrl-C
        # that escapes the loop leaves the estimator holding the latest ones.
        self._publish(run.model, run.theta)
        result = run(callback=on_eval)
        self.history_ = result.frame()
        self.status_ = str(result.status)
        epochs = float(result.rows[-1]["epoch"])
        # scikit-learn's n_iter_ counts epochs; a partial last one counts as one
        self.n_iter_ = math.ceil(epochs - EPOCH_ROUNDING)
        self.n_steps_ = result.n_iter
        self.n_grad_evals_ = result.n_grad_evals
        if result.status == Status.INTERRUPTED:
            warnings.warn(
                f"fit interrupted after {result.n_iter} minibatch updates; the weights reached "
                "so far are kept in coef_ (fit again with warm_start=True to continue)",
                FitInterruptedWarning,
                stacklevel=2,
            )
        elif result.status == Status.COMPLETED:  # a limit ended it: early, or unconverged?
            ended = {
                "max_epochs": epochs,
                "max_iter": result.n_iter,
                "max_grad_evals": result.n_grad_evals,
                "max_seconds": float(result.rows[-1]["train_seconds"]),
            }
            message = _budget_message(run.loop.budget.as_values(), ended, values["tol"])
            if message is not None:
                warnings.warn(message, ConvergenceWarning, stacklevel=2)
        return self

    def _publish(self, model: MLP, theta: np.ndarray) -> None:
        self.model_ = model
        self.coef_ = theta
        self.coefs_ = model.layout.weights(theta)
        self.intercepts_ = model.layout.biases(theta)

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes).

        With sigmoid outputs, each output is a one-vs-all probability; they
        are divided by their sum so that rows sum to 1.
        """
        X = self._check_X(X)
        proba = self.model_.predict_proba(self.coef_, X).astype(np.float64)
        if self.model_.output == "sigmoid":
            proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class of each row."""
        X = self._check_X(X)
        return self.classes_[self.model_.predict(self.coef_, X)]


def _signature() -> inspect.Signature:
    """``__init__``'s signature, made from the schema: scikit-learn reads the
    parameters (get_params, clone) from it."""
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature(
        [this]
        + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in _defaults().items()
        ]
    )


MLPClassifier.__init__.__signature__ = _signature()  # type: ignore[attr-defined]


def _with_parameters(doc: str) -> str:
    """The docstring with the parameters in place, at the placeholder's indent
    (which is 4 spaces, or none where Python strips docstrings' indents)."""
    indent = re.search(r"^( *)\{parameters\}$", doc, re.MULTILINE)
    if indent is None:
        return doc
    lines = _parameter_docs().splitlines()
    text = "\n".join(indent.group(1) + line for line in lines)
    return doc[: indent.start()] + text + doc[indent.end() :]


MLPClassifier.__doc__ = _with_parameters(MLPClassifier.__doc__ or "")
