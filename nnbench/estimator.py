"""A scikit-learn-style classifier on top of the training loop.

The post's ``NN`` class under scikit-learn's names: it clones, fits in a
``Pipeline`` and under ``cross_val_score``, and passes scikit-learn's
estimator checks. Its weights are one flat vector, ``coef_``, with the
per-layer ``coefs_`` and ``intercepts_`` as views into it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nnbench import optimizers
from nnbench.build import build_run, run_values
from nnbench.errors import ConfigError
from nnbench.mlp import MLP
from nnbench.settings import DEFAULTS
from nnbench.status import Status


def _parameter_message(message: str) -> str:
    """A schema error reworded with the estimator's parameter names."""
    names = {
        "[model] l2": "alpha",
        "[grid] seeds": "random_state",
        "[eval] every": "eval_every",
        "[model] hidden": "hidden_layer_sizes",
    }
    message = message.removeprefix("settings: ")
    for where, name in names.items():
        message = message.replace(where, name)
    for section in ("[model] ", "[grid] ", "[budget] ", "[eval] ", "[data] "):
        message = message.replace(section, "")
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

    Parameters
    ----------
    hidden_layer_sizes : sequence of int
        Units per hidden layer; ``(25,)`` is the post's network.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden activation.
    output : {"sigmoid", "softmax"}
        The post's one-vs-all sigmoid outputs, or softmax.
    optimizer : str
        A registered optimizer name (``nnbench list``).
    optimizer_options : dict, optional
        The optimizer's options; unknown or invalid ones raise ValueError.
    batch_size : int, float or "full"
        Rows per minibatch, a fraction of the rows when < 1, or the whole set.
    batch_growth : float
        Factor by which the batch grows after every pass, up to full batch.
    max_iter : int or None
        Budget in minibatch iterations (the post's ``maxiter``).
    max_epochs, max_seconds : float or None
        Further budgets; the run stops at whichever comes first (with none
        at all, the default: 100 iterations).
    tol : float or None
        Stop when the training cost changes by less than this between two
        evaluations.
    alpha : float
        L2 penalty.
    init : {"auto", "blog", "glorot", "he"}
        Initialisation scheme (see :meth:`nnbench.mlp.MLP.init`).
    random_state : int, Generator, RandomState or None
        Seeds the initial weights and the minibatch order; the default is
        nnbench's default seed (the post's 1234), so two fits agree; None
        draws a fresh seed.
    dtype : {"float64", "float32"}
    coef0 : ndarray, optional
        Start from these flat weights instead of a random draw.
    warm_start : bool
        Continue from the previous fit's ``coef_`` when its shape fits.
    eval_every : int or "epoch"
        When to record a row of ``history_`` (and check ``tol``, call the
        callback): every that many iterations, or at the end of every pass.
    evaluation : {"running", "full"}
        What a row holds. ``"running"`` (default, scikit-learn's
        ``loss_curve_``): the mean minibatch loss since the previous row, at
        no extra cost. ``"full"``: cost and accuracy on the whole training
        set, a pass over it at every row.
    callback : callable, optional
        ``callback(info) -> bool`` at every evaluation; ``info`` holds the
        metrics and ``theta``. Returning True stops the fit.
    verbose : int
        Print every evaluation when > 0.

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

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (25,),
        activation: str = "sigmoid",
        output: str = "sigmoid",
        optimizer: str = "gd",
        optimizer_options: dict[str, Any] | None = None,
        batch_size: float | str = DEFAULTS["batch_size"],
        batch_growth: float = DEFAULTS["batch_growth"],
        max_iter: int | None = DEFAULTS["max_iter"],
        max_epochs: float | None = DEFAULTS["max_epochs"],
        max_seconds: float | None = DEFAULTS["max_seconds"],
        tol: float | None = DEFAULTS["tol"],
        alpha: float = DEFAULTS["l2"],
        init: str = DEFAULTS["init"],
        random_state: Any = DEFAULTS["seed"],
        dtype: str = DEFAULTS["dtype"],
        coef0: np.ndarray | None = None,
        warm_start: bool = False,
        eval_every: int | str = "epoch",
        evaluation: str = "running",
        callback: Callable[[dict[str, Any]], Any] | None = None,
        verbose: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output = output
        self.optimizer = optimizer
        self.optimizer_options = optimizer_options
        self.batch_size = batch_size
        self.batch_growth = batch_growth
        self.max_iter = max_iter
        self.max_epochs = max_epochs
        self.max_seconds = max_seconds
        self.tol = tol
        self.alpha = alpha
        self.init = init
        self.random_state = random_state
        self.dtype = dtype
        self.coef0 = coef0
        self.warm_start = warm_start
        self.eval_every = eval_every
        self.evaluation = evaluation
        self.callback = callback
        self.verbose = verbose

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
        budget = {
            k: v
            for k, v in (
                ("max_iter", self.max_iter),
                ("max_epochs", self.max_epochs),
                ("max_seconds", self.max_seconds),
            )
            if v is not None
        }
        try:
            return run_values(
                hidden=self._hidden(),
                activation=self.activation,
                output=self.output,
                l2=self.alpha,
                init=self.init,
                dtype=self.dtype,
                batch_size=self.batch_size,
                batch_growth=self.batch_growth,
                seed=seed,
                tol=self.tol,
                every=self.eval_every,
                # a fit's full evaluation is on all its rows
                train_rows="all" if self.evaluation == "full" else "running",
                **budget,
            )
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
