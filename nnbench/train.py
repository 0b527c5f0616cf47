"""One training run: minibatches, budgets, evaluation on a schedule, stopping.

The loop is the same for every optimizer, which is what makes a comparison
fair: for one seed, every optimizer starts from the same weights
(:func:`initial_weights`) and sees the same minibatch order (the batch
generator comes from the seed alone), and the time spent evaluating is kept
out of the training time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnbench.mlp import MLP
from nnbench.optimizers import Optimizer

Split = tuple[np.ndarray, np.ndarray]

# How a run ended.
COMPLETED = "completed"  # a budget ran out
CONVERGED = "converged"  # training cost changed by less than tol
STOPPED = "stopped"  # the callback asked to stop
DIVERGED = "diverged"  # non-finite or exploding cost
INTERRUPTED = "interrupted"  # Ctrl-C
FAILED = "failed"  # an exception (recorded by the runner, never raised by train())
STATUSES = (COMPLETED, CONVERGED, STOPPED, DIVERGED, INTERRUPTED, FAILED)

# A training cost this many times the starting one counts as divergence:
# far beyond any rise a working optimizer makes on the way down.
DIVERGENCE_FACTOR = 100.0

METRICS = (
    "iteration",
    "epoch",
    "samples",
    "grad_evals",
    "batch_rows",
    "train_cost",
    "train_accuracy",
    "val_cost",
    "val_accuracy",
    "test_cost",
    "test_accuracy",
    "train_seconds",
    "eval_seconds",
)


def seed_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the initial weights and the minibatch order."""
    init_seq, batch_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_seq), np.random.default_rng(batch_seq)


def initial_weights(model: MLP, seed: int, scheme: str = "auto") -> np.ndarray:
    """The start vector for ``seed``: the same for every optimizer."""
    return model.init(seed_rngs(seed)[0], scheme)


def resolve_batch_size(batch_size: float, n_samples: int) -> int:
    """A count (>= 1) or a fraction of the rows (< 1), as the post allowed; at most all rows."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, float, np.number)):
        raise ValueError(f"batch_size must be a number; got {batch_size!r}")
    if not batch_size > 0 or not math.isfinite(batch_size):
        raise ValueError(f"batch_size must be > 0 (a count, or a fraction < 1); got {batch_size}")
    if batch_size < 1:
        return max(1, math.floor(n_samples * batch_size))
    if batch_size != int(batch_size):
        raise ValueError(f"a batch_size >= 1 must be a whole number; got {batch_size}")
    return min(int(batch_size), n_samples)


@dataclass
class Budget:
    """Stop at whichever comes first; at least one must be set."""

    max_iter: int | None = None
    max_epochs: float | None = None
    max_grad_evals: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        values = {k: v for k, v in vars(self).items() if v is not None}
        if not values:
            raise ValueError(
                "a run needs a budget: set max_iter, max_epochs, max_grad_evals or max_seconds"
            )
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{key} must be a number > 0; got {value!r}")

    def exhausted(self, it: int, epoch: float, grad_evals: int, seconds: float) -> bool:
        return (
            (self.max_iter is not None and it >= self.max_iter)
            or (self.max_epochs is not None and epoch >= self.max_epochs - 1e-12)
            or (self.max_grad_evals is not None and grad_evals >= self.max_grad_evals)
            or (self.max_seconds is not None and seconds >= self.max_seconds)
        )


@dataclass
class TrainResult:
    """What a run leaves: final weights, one row per evaluation, how it ended."""

    theta: np.ndarray
    rows: list[dict[str, Any]]
    status: str
    message: str = ""
    n_iter: int = 0
    n_grad_evals: int = 0
    optimizer_state: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(METRICS))


class BatchObjective:
    """``fun(theta) -> (loss, grad)`` on the current minibatch; counts every call.

    The gradient is written into one buffer reused by every call: it is valid
    until the next call, and an optimizer that keeps a gradient across calls
    must copy it (scipy's minimisers do, see ``scipy_based``). Minibatch rows
    are gathered into kept buffers too, so a step allocates no large array.
    """

    def __init__(self, model: MLP) -> None:
        self.model = model
        self.n_evals = 0
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self._grad = np.empty(model.n_params, dtype=model.dtype)
        self._bufs: tuple[np.ndarray, np.ndarray] | None = None

    def select(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> None:
        """Make rows ``idx`` of ``(X, y)`` the current minibatch."""
        n = len(idx)
        if self._bufs is None or len(self._bufs[1]) != n:
            self._bufs = (np.empty((n, X.shape[1]), dtype=X.dtype), np.empty(n, dtype=y.dtype))
        # np.take into a kept buffer, with mode="wrap" to skip the bounds
        # checks (the indices are valid), is about 3x faster than X[idx].
        self.X = np.take(X, idx, axis=0, out=self._bufs[0], mode="wrap")
        self.y = np.take(y, idx, out=self._bufs[1], mode="wrap")

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.n_evals += 1
        if theta.dtype != self._grad.dtype or theta.shape != self._grad.shape:
            return self.model.loss_and_grad(theta, self.X, self.y, out=self._grad)
        # the batch buffers have the model's dtype and shapes: skip the checks
        return self.model._loss_and_grad(theta, self.X, self.y, self._grad)


def minibatches(
    n_samples: int, batch_size: int, rng: np.random.Generator, growth: float = 1.0
) -> Iterator[tuple[np.ndarray, int, int, int]]:
    """Index arrays of minibatches, endlessly: ``(indices, pass, index in pass, batches in pass)``.

    A fresh permutation per pass; the remainder that does not fill a batch is
    dropped (the post's rule). With ``growth > 1`` the batch grows by that
    factor after every pass, up to the whole training set.
    """
    size = float(batch_size)
    n_pass = 0
    while True:
        bs = min(n_samples, round(size))
        order = rng.permutation(n_samples)
        n_batches = n_samples // bs
        for i in range(n_batches):
            yield order[i * bs : (i + 1) * bs], n_pass, i, n_batches
        n_pass += 1
        size *= growth


def train(
    model: MLP,
    theta: np.ndarray,
    train_data: Split,
    optimizer: Optimizer,
    *,
    budget: Budget,
    rng: np.random.Generator,
    batch_size: float = 50,
    batch_growth: float = 1.0,
    valid: Split | None = None,
    test: Split | None = None,
    eval_every: int | str = "epoch",
    tol: float | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    divergence_factor: float = DIVERGENCE_FACTOR,
) -> TrainResult:
    """Train ``theta`` in place with ``optimizer`` until the budget or a stop.

    Parameters
    ----------
    model : MLP
    theta : ndarray of shape (model.n_params,)
        Start weights, updated in place (the estimator's views stay valid).
    train_data : (X, y)
        ``X`` of shape (n_samples, n_features), ``y`` int labels of shape (n_samples,).
    optimizer : Optimizer
    budget : Budget
    rng : numpy Generator
        Drives the minibatch order only.
    batch_size : int or float
        A count, or a fraction of the rows when < 1.
    batch_growth : float
        Factor by which the batch grows after every pass (1: fixed).
    valid, test : (X, y), optional
        Evaluated at every evaluation point.
    eval_every : int or "epoch"
        Evaluate every that many iterations, or at the end of every pass.
        There is always a row before the first step and one at the end.
    tol : float, optional
        Stop with status ``converged`` when the training cost changes by less
        than ``tol`` between two evaluations (the post's ``tol``, checked at
        evaluation points; evaluate every iteration for the post's rule).
    callback : callable, optional
        Called with each evaluation row (plus ``theta``); a true return stops
        the run with status ``stopped``.

    Returns
    -------
    TrainResult
        Its ``rows`` hold the columns of :data:`METRICS`. Divergence and
        Ctrl-C end the run with a status; they are not raised.
    """
    X, y = train_data
    n_samples = len(X)
    if n_samples == 0:
        raise ValueError("the training set is empty")
    if not (isinstance(eval_every, int) and eval_every >= 1) and eval_every != "epoch":
        raise ValueError(f"eval_every must be an integer >= 1 or 'epoch'; got {eval_every!r}")
    if not (isinstance(batch_growth, (int, float)) and batch_growth >= 1):
        raise ValueError(f"batch_growth must be a number >= 1; got {batch_growth!r}")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be >= 0; got {tol!r}")
    bs0 = resolve_batch_size(batch_size, n_samples)
    X = np.asarray(X)
    if X.dtype != model.dtype:
        X = X.astype(model.dtype)  # once, not per minibatch or per evaluation
    y = np.asarray(y)
    valid, test = (
        (np.asarray(split[0], dtype=model.dtype), np.asarray(split[1]))
        if split is not None
        else None
        for split in (valid, test)
    )

    objective = BatchObjective(model)
    state = optimizer.init(theta)
    rows: list[dict[str, Any]] = []
    clock = {"train": 0.0, "eval": 0.0}
    progress = {"iteration": 0, "epoch": 0.0, "samples": 0, "batch_rows": bs0}

    def evaluate() -> dict[str, Any]:
        t0 = time.perf_counter()
        row = dict(progress, grad_evals=objective.n_evals)
        # Weights gone to NaN or inf are reported as a non-finite cost, not warned about.
        with np.errstate(invalid="ignore", over="ignore"):
            row["train_cost"], row["train_accuracy"] = model.evaluate(theta, X, y)
            for name, split in (("val", valid), ("test", test)):
                cost, acc = model.evaluate(theta, *split) if split else (np.nan, np.nan)
                row[f"{name}_cost"], row[f"{name}_accuracy"] = cost, acc
        clock["eval"] += time.perf_counter() - t0
        row["train_seconds"], row["eval_seconds"] = clock["train"], clock["eval"]
        rows.append(row)
        return row

    status, message = COMPLETED, ""
    try:
        first_cost = evaluate()["train_cost"]
        if not math.isfinite(first_cost):
            return TrainResult(theta, rows, DIVERGED, "the starting cost is not finite")
        batches = minibatches(n_samples, bs0, rng, batch_growth)
        while True:
            t0 = time.perf_counter()
            idx, n_pass, i, n_batches = next(batches)
            objective.select(X, y, idx)
            loss = optimizer.step(objective, theta, state)
            clock["train"] += time.perf_counter() - t0

            it = progress["iteration"] = progress["iteration"] + 1
            progress["epoch"] = n_pass + (i + 1) / n_batches
            progress["samples"] += len(idx)
            progress["batch_rows"] = len(idx)
            end_of_pass = i + 1 == n_batches
            done = budget.exhausted(it, progress["epoch"], objective.n_evals, clock["train"])
            if not math.isfinite(loss):
                evaluate()
                status, message = DIVERGED, f"minibatch loss became {loss} at iteration {it}"
                break
            due = end_of_pass if eval_every == "epoch" else it % eval_every == 0
            if not (due or done):
                continue
            prev_cost = rows[-1]["train_cost"]
            row = evaluate()
            cost = row["train_cost"]
            if not math.isfinite(cost) or cost > divergence_factor * max(first_cost, 1e-12):
                status = DIVERGED
                message = f"training cost {cost:.4g} at iteration {it} (from {first_cost:.4g})"
                break
            if callback is not None and callback(dict(row, theta=theta)):
                status, message = STOPPED, f"the callback stopped the run at iteration {it}"
                break
            if tol is not None and abs(cost - prev_cost) < tol:
                status, message = CONVERGED, f"training cost changed by less than {tol:g}"
                break
            if done:
                break
    except KeyboardInterrupt:
        status = INTERRUPTED
        message = f"interrupted after iteration {progress['iteration']}"
    return TrainResult(
        theta, rows, status, message, progress["iteration"], objective.n_evals, state
    )
