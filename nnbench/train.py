"""One training run: minibatches, budgets, evaluation on a schedule, stopping.

The loop is the same for every optimizer, which is what makes a comparison
fair: for one seed, every optimizer starts from the same weights and sees the
same minibatch order (:mod:`nnbench.seeding`), and the time spent evaluating
is kept out of the training time. How a run is built from its settings is
:func:`nnbench.build.build_run`; this module is the loop itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from nnbench import settings
from nnbench.mlp import MLP
from nnbench.optimizers import Optimizer
from nnbench.settings import FULL_BATCH, RUNNING, budget_axis
from nnbench.status import Status

if TYPE_CHECKING:
    from nnbench.data.formats import Split


# A training cost this many times the starting one counts as divergence:
# far beyond any rise a working optimizer makes on the way down.
DIVERGENCE_FACTOR = 100.0
# The fixed subset of training rows that training metrics are computed on
# (eval.train_rows) is drawn with this seed: the same rows for every run.
TRAIN_SUBSET_SEED = 0
# With spacing = "log", the first evaluation point is at this fraction of the budget.
LOG_FIRST = 0.01

# The columns of a run's rows, in order. Of them, the scores: an accuracy is
# better higher, a cost lower (what compare and the gate read, from here).
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
    "train_cpu_seconds",
    "eval_seconds",
    "stack_seconds",
)
SCORES = tuple(m for m in METRICS if m.endswith(("_cost", "_accuracy")))
HIGHER_IS_BETTER = {m: m.endswith("_accuracy") for m in SCORES}


def resolve_batch_size(batch_size: float | str, n_samples: int) -> int:
    """A count (>= 1), a fraction of the rows (< 1), or ``"full"``; at most all rows."""
    if batch_size == FULL_BATCH:
        return n_samples
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, float, np.number)):
        raise ValueError(f'batch_size must be a number or "full"; got {batch_size!r}')
    if not batch_size > 0 or not math.isfinite(batch_size):
        raise ValueError(
            f'batch_size must be > 0 (a count, a fraction < 1) or "full"; got {batch_size}'
        )
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

    def as_values(self) -> dict[str, Any]:
        return dict(vars(self))


class TooManyEvaluations(Exception):
    """A run reached the number of evaluation points a run may record."""


class LoopSettings:
    """How the loop runs: the budget, and every setting of the schema's ``loop``
    stage (see ``nnbench config``), read as attributes: ``loop.batch_size``.

    Made from the schema: a setting declared there with ``stage="loop"`` is a
    field here, with its default and its checks; anything else is an error.
    ``train_rows = "running"`` records the mean minibatch loss since the
    previous point as the training cost (scikit-learn's cheap
    ``loss_curve_``, the estimator's default) instead of a pass over training
    rows; the validation and test sets are evaluated all the same.
    """

    def __init__(
        self, budget: Budget, divergence_factor: float = DIVERGENCE_FACTOR, **values: Any
    ) -> None:
        unknown = sorted(set(values) - set(LOOP_KEYS))
        if unknown:
            raise ValueError(
                f"unknown loop setting(s) {', '.join(unknown)}; the loop takes "
                f"{', '.join(LOOP_KEYS)} (`nnbench config`)"
            )
        self.budget = budget
        self.divergence_factor = divergence_factor
        self.values = {
            key: settings.BY_KEY[key].convert(values.get(key, settings.DEFAULTS[key]), "loop")
            for key in LOOP_KEYS
        }
        settings.check_evaluations(self.values["every"], budget.max_iter, "eval every")

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"LoopSettings has no setting {name!r}")

    def __repr__(self) -> str:
        return f"LoopSettings({self.budget}, {self.values})"

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **extra: Any) -> LoopSettings:
        """From a run's settings (the schema's keys; another key is an error)."""
        unknown = sorted(set(values) - set(settings.BY_KEY))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)} (`nnbench config`)")
        budget = Budget(**{k: values.get(k) for k in settings.BUDGET_KEYS})
        return cls(budget, **{k: values[k] for k in LOOP_KEYS if k in values}, **extra)


# The loop's settings: the schema's loop stage, the budget apart (a Budget).
LOOP_KEYS = tuple(k for k in settings.keys_of("loop") if k not in settings.BUDGET_KEYS)


class EvalSchedule:
    """When to evaluate: every N iterations, at the end of every pass, or at
    ``points`` thresholds spread over the budget (linearly, or logarithmically
    from 1% of it), on the axis of the budget that was set."""

    def __init__(self, loop: LoopSettings) -> None:
        self.every = loop.every
        self.thresholds: list[float] = []
        self.axis: str | None = None  # the budget the points are spread over
        if self.every is None:
            values = loop.budget.as_values()
            self.axis = budget_axis(values)
            total = float(
                values[
                    {
                        "epoch": "max_epochs",
                        "iteration": "max_iter",
                        "grad_evals": "max_grad_evals",
                        "train_seconds": "max_seconds",
                    }[self.axis]
                ]
            )
            n = loop.points
            if loop.spacing == "linear":
                fractions = [k / n for k in range(1, n + 1)]
            else:
                fractions = [LOG_FIRST ** ((n - k) / max(n - 1, 1)) for k in range(1, n + 1)]
            self.thresholds = [total * f for f in fractions]
        self._next = 0

    def due(self, progress: Mapping[str, float], end_of_pass: bool) -> bool:
        """Whether an evaluation is due now; passes every threshold crossed."""
        if self.every == "epoch":
            return end_of_pass
        if self.every is not None:
            return progress["iteration"] % self.every == 0
        value = progress[self.axis]
        due = False
        # a float budget (epochs, seconds) is reached within rounding
        while self._next < len(self.thresholds) and value >= self.thresholds[self._next] * (
            1 - 1e-12
        ):
            self._next += 1
            due = True
        return due


class TrainingClock:
    """Training time on two clocks, counted over the spans between evaluations.

    ``wall``: elapsed seconds (``time.perf_counter``), what a user waits;
    it moves with whatever else the machine runs. ``cpu``: the CPU seconds
    of this process (``time.process_time``) over the same spans, which
    another process on the machine does not inflate (a run's process has
    its own BLAS threads, one by default, and nothing else). Evaluation is
    on neither: ``eval`` counts it apart.
    """

    def __init__(self) -> None:
        self.wall = self.cpu = self.eval = 0.0
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def pause(self) -> None:
        """End a training span."""
        self.wall += time.perf_counter() - self._wall0
        self.cpu += time.process_time() - self._cpu0

    def resume(self) -> None:
        """Start a training span."""
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def training_seconds(self) -> float:
        """Wall seconds of training so far, the current span included."""
        return self.wall + time.perf_counter() - self._wall0


@dataclass
class TrainResult:
    """What a run leaves: final weights, one row per evaluation, how it ended."""

    theta: np.ndarray
    rows: list[dict[str, Any]]
    status: Status
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
        if n == len(X):  # the whole set, in order (full batch): no copy
            self.X, self.y = X, y
            return
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
    everything = np.arange(n_samples)
    while True:
        bs = min(n_samples, round(size))
        if bs == n_samples:
            # the whole set, in order: no permutation (it would only reorder a sum)
            yield everything, n_pass, 0, 1
        else:
            order = rng.permutation(n_samples)
            n_batches = n_samples // bs
            for i in range(n_batches):
                yield order[i * bs : (i + 1) * bs], n_pass, i, n_batches
        n_pass += 1
        size *= growth


# One function on purpose, longer than the rest: the loop's state (clock,
# progress, rows) stays in its locals, and every step pays no call it can avoid.
def train(
    model: MLP,
    theta: np.ndarray,
    train_data: Split,
    optimizer: Optimizer,
    loop: LoopSettings,
    rng: np.random.Generator,
    *,
    valid: Split | None = None,
    test: Split | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    heartbeat: Callable[[int], None] | None = None,
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
    loop : LoopSettings
        Budget, batches, evaluation schedule and stops.
    rng : numpy Generator
        Drives the minibatch order only.
    valid, test : (X, y), optional
        Evaluated at every evaluation point.
    callback : callable, optional
        Called with each evaluation row (plus ``theta``); a true return stops
        the run with status ``stopped``.
    heartbeat : callable, optional
        Called with the iteration number after every step (the runner's
        watchdog uses it to tell a slow run from a hung one).

    Returns
    -------
    TrainResult
        Its ``rows`` hold the columns of :data:`METRICS`; there is always a
        row before the first step and one at the end. Divergence and Ctrl-C
        end the run with a status; they are not raised.
    """
    inputs = loop_inputs(model, train_data, loop, valid, test)
    X, y, bs0, valid, test, train_eval, schedule = inputs
    n_samples = len(X)
    full = train_eval is not None
    budget = loop.budget

    objective = BatchObjective(model)
    state = optimizer.start(theta)
    rows: list[dict[str, Any]] = []
    progress: dict[str, Any] = {"iteration": 0, "epoch": 0.0, "samples": 0, "batch_rows": bs0}
    running = {"loss": 0.0, "n": 0}
    # a time budget, or evaluation points spread over time, read the clock every step
    timed = budget.max_seconds is not None or schedule.axis == "train_seconds"

    def evaluate(with_test: bool = loop.test_curve) -> dict[str, Any]:
        if len(rows) > settings.MAX_EVAL_POINTS:  # the start and the points a run may record
            raise TooManyEvaluations
        clock.pause()
        t0 = time.perf_counter()
        row = dict(progress, grad_evals=objective.n_evals)
        # Weights gone to NaN or inf are reported as a non-finite cost, not warned about.
        with np.errstate(invalid="ignore", over="ignore"):
            if full:
                row["train_cost"], row["train_accuracy"] = model.evaluate(theta, *train_eval)
            else:  # the mean minibatch loss since the last point; the first is a pass of its own
                loss = running["loss"] / running["n"] if running["n"] else np.nan
                if not running["n"]:
                    loss = model.evaluate(theta, X[:bs0], y[:bs0])[0]
                row["train_cost"], row["train_accuracy"] = loss, np.nan
                running.update(loss=0.0, n=0)
            for name, split in (("val", valid), ("test", test if with_test else None)):
                cost, acc = model.evaluate(theta, *split) if split else (np.nan, np.nan)
                row[f"{name}_cost"], row[f"{name}_accuracy"] = cost, acc
        clock.eval += time.perf_counter() - t0
        row["train_seconds"], row["train_cpu_seconds"] = clock.wall, clock.cpu
        row["eval_seconds"] = clock.eval
        rows.append(row)
        clock.resume()
        return row

    status, message = Status.COMPLETED, ""
    clock = TrainingClock()
    try:
        first_cost = evaluate()["train_cost"]
        if not math.isfinite(first_cost):
            return TrainResult(theta, rows, Status.DIVERGED, "the starting cost is not finite")
        batches = minibatches(n_samples, bs0, rng, loop.batch_growth)
        seconds = 0.0
        while True:
            idx, n_pass, i, n_batches = next(batches)
            objective.select(X, y, idx)
            loss = optimizer.update(objective, theta, state)

            it = progress["iteration"] = progress["iteration"] + 1
            if heartbeat is not None:
                heartbeat(it)
            progress["epoch"] = n_pass + (i + 1) / n_batches
            progress["samples"] += len(idx)
            progress["batch_rows"] = len(idx)
            running["loss"] += loss
            running["n"] += 1
            if timed:
                seconds = clock.training_seconds()
            done = budget.exhausted(it, progress["epoch"], objective.n_evals, seconds)
            if not math.isfinite(loss):
                evaluate()
                status, message = Status.DIVERGED, f"minibatch loss became {loss} at iteration {it}"
                break
            due = schedule.due(
                dict(progress, grad_evals=objective.n_evals, train_seconds=seconds),
                i + 1 == n_batches,
            )
            if not (due or done):
                continue
            prev_cost = rows[-1]["train_cost"]
            row = evaluate()
            cost = row["train_cost"]
            if not math.isfinite(cost) or cost > loop.divergence_factor * max(first_cost, 1e-12):
                status = Status.DIVERGED
                message = f"training cost {cost:.4g} at iteration {it} (from {first_cost:.4g})"
                break
            if callback is not None and callback(dict(row, theta=theta)):
                status, message = Status.STOPPED, f"the callback stopped the run at iteration {it}"
                break
            if loop.tol is not None and abs(cost - prev_cost) < loop.tol:
                status, message = (
                    Status.CONVERGED,
                    f"training cost changed by less than {loop.tol:g}",
                )
                break
            if done:
                break
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
        message = f"interrupted after iteration {progress['iteration']}"
    except TooManyEvaluations:  # a budget not counted ahead (epochs, seconds) under eval every
        status = Status.FAILED
        message = (
            f"stopped at iteration {progress['iteration']}: more than the "
            f"{settings.MAX_EVAL_POINTS:,} evaluation points a run records; evaluate less often"
        )
    if test is not None and rows and not loop.test_curve:
        # the test split at the last point: the weights are still those it evaluated
        t0 = time.perf_counter()
        with np.errstate(invalid="ignore", over="ignore"):
            rows[-1]["test_cost"], rows[-1]["test_accuracy"] = model.evaluate(theta, *test)
        clock.eval += time.perf_counter() - t0
        rows[-1]["eval_seconds"] = clock.eval
    return TrainResult(
        theta, rows, status, message, progress["iteration"], objective.n_evals, state
    )


class LoopInputs(NamedTuple):
    """What a training loop reads, ready: the training set, validation and test
    splits in the model's dtype (converted once, not per minibatch or per
    evaluation), the first batch size, the rows training metrics are computed
    on (None: the running minibatch loss) and the evaluation schedule."""

    X: np.ndarray
    y: np.ndarray
    batch_size: int
    valid: Split | None
    test: Split | None
    train_eval: Split | None
    schedule: EvalSchedule


def loop_inputs(
    model: MLP, train_data: Split, loop: LoopSettings, valid: Split | None, test: Split | None
) -> LoopInputs:
    """The inputs of :func:`train` and :func:`nnbench.stack.train_stack`, checked
    and converted."""
    X, y = train_data
    n_samples = len(X)
    if n_samples == 0:
        raise ValueError("the training set is empty")
    bs0 = resolve_batch_size(loop.batch_size, n_samples)
    X = np.asarray(X)
    if X.dtype != model.dtype:
        X = X.astype(model.dtype)
    y = np.asarray(y)
    valid, test = (
        (np.asarray(split[0], dtype=model.dtype), np.asarray(split[1]))
        if split is not None
        else None
        for split in (valid, test)
    )
    train_eval = _train_subset(X, y, loop.train_rows) if loop.train_rows != RUNNING else None
    return LoopInputs(X, y, bs0, valid, test, train_eval, EvalSchedule(loop))


def _train_subset(X: np.ndarray, y: np.ndarray, rows: int | str) -> Split:
    """The training rows that training metrics are computed on: all of them, or a
    fixed random subset, the same for every run (as AlgoPerf evaluates)."""
    if rows == "all" or rows >= len(X):
        return X, y
    idx = np.sort(np.random.default_rng(TRAIN_SUBSET_SEED).choice(len(X), rows, replace=False))
    return X[idx], y[idx]
