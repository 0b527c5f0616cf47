"""A scikit-learn-style classifier on top of the training loop.

The post's ``NN`` class under scikit-learn's names: it clones, fits in a
``Pipeline`` and under ``cross_val_score``, and passes scikit-learn's
estimator checks. Its weights are one flat vector, ``coef_``, with the
per-layer ``coefs_`` and ``intercepts_`` as views into it.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nnbench import optimizers
from nnbench.build import build_run, run_values
from nnbench.errors import ConfigError
from nnbench.mlp import MLP
from nnbench.settings import BUDGET_KEYS, BY_KEY, DEFAULTS, RUN_SETTINGS
from nnbench.status import Status

# The estimator's parameters: every run setting a fit uses (the schema's
# ``estimator`` names), then its own. Defaults are the schema's, but for these:
DEFAULTS_HERE = {
    "every": "epoch",  # one row of history_ per pass, as scikit-learn's loss_curve_
}
SETTINGS = {s.key: s.estimator or s.key for s in RUN_SETTINGS if s.estimator is not None}
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
        lines += [
            f"    {name} : {setting.option.describe_range()}, default {default!r}",
            f"        {setting.option.doc} (the setting {setting.where}).",
        ]
    for name, (default, doc) in OWN.items():
        kind, _, text = doc.partition(": ")
        text = text[:1].upper() + text[1:]
        lines += [f"    {name} : {kind}, default {default!r}", f"        {text}."]
    return "\n".join(lines)


def _parameter_message(message: str) -> str:
    """A schema error reworded with the estimator's parameter names."""
    message = message.removeprefix("settings: ")
    for key, name in SETTINGS.items():
        message = message.replace(f"{BY_KEY[key].where}:", f"{name}:")
    return message


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
        ``random_state`` for the seed, ``hidden_layer_sizes``), then its own.

        Parameters
        ----------
    {parameters}

        With no budget at all (``max_iter``, ``max_epochs``, ``max_grad_evals``,
        ``max_seconds`` all None) a fit runs the default 100 iterations;
        ``random_state`` may also be None (a fresh seed), a numpy Generator or a
        RandomState.

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
            One row per evaluation.
        status_ : str
            How the fit ended (completed, converged, stopped, diverged, interrupted).
        n_iter_ : int
    """

    def __init__(self, **params: Any) -> None:
        defaults = _defaults()
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(
                f"MLPClassifier got unknown parameter(s) {', '.join(unknown)}; it takes "
                f"{', '.join(defaults)}"
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
        for key in BUDGET_KEYS:  # a budget given replaces the default one whole
            if given[key] is None:
                given.pop(key)
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
                    f"iter {info['iteration']:6d}  epoch {info['epoch']:7.3f}  "
                    f"cost {info['train_cost']:.6f}  accuracy {info['train_accuracy']:.4f}"
                )
            return bool(self.callback(info)) if self.callback is not None else False

        # The weights are published before training, so that even a Ctrl-C
        # that escapes the loop leaves the estimator holding the latest ones.
        self._publish(run.model, run.theta)
        result = run(callback=on_eval)
        self.history_ = result.frame()
        self.status_ = str(result.status)
        self.n_iter_ = result.n_iter
        self.n_grad_evals_ = result.n_grad_evals
        if result.status == Status.INTERRUPTED:
            warnings.warn(
                f"fit interrupted after {result.n_iter} iterations; the weights reached "
                "so far are kept in coef_ (fit again with warm_start=True to continue)",
                FitInterruptedWarning,
                stacklevel=2,
            )
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
MLPClassifier.__doc__ = (MLPClassifier.__doc__ or "").replace("{parameters}", _parameter_docs())
