"""The training loop: minibatches, budgets, evaluation on a schedule, stopping.

One loop trains every run: a run alone is a stack of one (:func:`train`),
a tuning study's trials that share a seed a stack of K
(:func:`train_stack`). The loop is the same for every optimizer, which is
what makes a comparison fair: for one seed, every optimizer starts from the
same weights and sees the same minibatch order (:mod:`nnbench.seeding`), and
the time spent evaluating is kept out of the training time. How a run is
built from its settings is :func:`nnbench.build.build_run`; this module is
the loop itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from nnbench import settings
from nnbench.mlp import MLP
from nnbench.optimizers import Optimizer
from nnbench.optimizers.base import stepper
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

    def due(
        self, progress: Mapping[str, float], end_of_pass: bool, grad_evals: int, seconds: float
    ) -> bool:
        """Whether an evaluation is due now, after a step (the loop's progress, its
        gradient evaluations and training seconds); passes every threshold crossed."""
        if self.every == "epoch":
            return end_of_pass
        if self.every is not None:
            return progress["iteration"] % self.every == 0
        axis = self.axis
        value = (
            grad_evals if axis == "grad_evals" else seconds if axis == "train_seconds"
            else progress[axis]
        )  # fmt: skip
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
    """The objective on the current minibatch, for K stacked weight vectors (a
    run alone is K = 1); counts every call.

    ``fun(thetas) -> (losses (K,), gradients (K, n_params))`` is what a
    vectorised step calls; ``fun(theta) -> (loss, gradient)``, for one vector,
    what a single-run step calls (scipy's minimisers). Gradients are written
    into one buffer reused by every call: valid until the next call, and an
    optimizer that keeps a gradient across calls must copy it (scipy's
    minimisers do, see ``scipy_based``). Minibatch rows are gathered into kept
    buffers too, so a step allocates no large array.
    """

    def __init__(self, model: MLP) -> None:
        self.model = model
        self.n_evals = 0
        self.X: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self._grads: np.ndarray | None = None
        self._bufs: tuple[np.ndarray, np.ndarray] | None = None

    def select(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> None:
        """Make rows ``idx`` of ``(X, y)`` the current minibatch."""
        n = len(idx)
        if n == len(X):  # the whole set, in order (full batch): no copy
            self.X, self.y = X, y
            return
        if self._bufs is None or len(self._bufs[1]) != n:
            self._bufs = (np.empty((n, X.shape[1]), dtype=X.dtype), np.empty(n, dtype=y.dtype))
        # take into a kept buffer, with mode="wrap" to skip the bounds checks
        # (the indices are valid), is about 3x faster than X[idx].
        self.X = X.take(idx, axis=0, out=self._bufs[0], mode="wrap")
        self.y = y.take(idx, out=self._bufs[1], mode="wrap")

    def __call__(self, thetas: np.ndarray) -> Any:
        if thetas.ndim == 1:
            return self.one(thetas)
        self.n_evals += 1
        grads = self._grads
        if grads is None or grads.shape[0] != thetas.shape[0]:
            model = self.model
            grads = self._grads = np.empty((thetas.shape[0], model.n_params), dtype=model.dtype)
        return self.model.losses_and_grads(thetas, self.X, self.y, grads), grads

    def one(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective of one run, ``(loss, gradient)``, what ``fun(theta)``
        gives for a vector: the stacked objective on a stack of one, so that
        what it does to a gradient reaches single-run steps too. ``theta`` may
        be another dtype (scipy's float64 copies), converted."""
        losses, grads = self(self.model._as_params(theta).reshape(1, -1))
        return float(losses[0]), grads[0]


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
    """Train ``theta`` in place with ``optimizer`` until the budget or a stop:
    :func:`train_stack` with a stack of one.

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
        Its ``rows`` hold the columns of :data:`METRICS` (``stack_seconds``
        empty); there is always a row before the first step and one at the
        end. Divergence and Ctrl-C end the run with a status; they are not raised.
    """
    rows = theta.reshape(1, -1)
    (result,) = train_stack(model, rows, train_data, [optimizer], loop, rng, valid=valid,
                            test=test, callback=callback, heartbeat=heartbeat)  # fmt: skip
    if not np.shares_memory(rows, theta) or rows.dtype != model.dtype:
        theta[...] = result.theta  # trained on a converted copy
    result.theta = theta
    return result


def train_stack(
    model: MLP,
    thetas: np.ndarray,
    train_data: Split,
    members: Sequence[Optimizer],
    loop: LoopSettings,
    rng: np.random.Generator,
    *,
    valid: Split | None = None,
    test: Split | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    heartbeat: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train the K rows of ``thetas`` ``(K, n_params)`` together, row ``j`` with
    ``members[j]``: one :class:`TrainResult` per member, in their order. The
    rows are trained in place.

    The one training loop: K = 1 is a run alone, K > 1 the members of a stack
    (:mod:`nnbench.stack`), runs of one optimizer that differ only in its
    number options, stepped at once by its vectorised step. Every member
    sees the same minibatches and evaluation points, and computes what it
    would alone, bit for bit. A member that diverges, converges or is
    stopped by ``callback`` (called with each of its rows, plus its
    ``theta``) leaves (its rows and weights are final); the others go on.

    A run alone is timed on its own clocks (``train_seconds``,
    ``train_cpu_seconds``, ``eval_seconds``). A stack's clock runs for all K
    at once: its members' rows leave those empty (NaN) and hold the stack's
    training seconds (wall clock) in ``stack_seconds``; a stack therefore
    refuses what reads a run's clock (:func:`stackable`).
    """
    if len(members) > 1 and (why := stackable(loop)) is not None:
        raise ValueError(f"runs with {why} cannot share a stack")
    inputs = loop_inputs(model, train_data, loop, valid, test)
    thetas = np.ascontiguousarray(thetas, dtype=model.dtype)
    if thetas.ndim != 2 or thetas.shape != (len(members), model.n_params):
        raise ValueError(
            f"the weights must have shape ({len(members)}, {model.n_params}), a row per "
            f"member; got {thetas.shape}"
        )
    return _Loop(model, thetas, members, loop, inputs, callback, heartbeat).run(rng)


def stackable(loop: LoopSettings) -> str | None:
    """Why runs with these loop settings cannot share a stack (None: they can).

    A budget in seconds, or evaluation points spread over seconds, would read
    the stack's clock as if it were each run's: such runs train alone."""
    if loop.budget.max_seconds is not None:
        return "a budget in seconds (max_seconds)"
    if EvalSchedule(loop).axis == "train_seconds":
        return "evaluation points spread over seconds"
    return None


# How a member's run ended: its status and message.
End = tuple[Status, str]


class _Loop:
    """The loop's state, for K members trained together (K = 1: a run alone),
    and its steps: start, train, evaluate at a point, end members."""

    def __init__(
        self,
        model: MLP,
        thetas: np.ndarray,
        members: Sequence[Optimizer],
        loop: LoopSettings,
        inputs: LoopInputs,
        callback: Callable[[dict[str, Any]], Any] | None,
        heartbeat: Callable[[int], None] | None,
    ) -> None:
        k = len(members)
        self.model, self.loop, self.inputs = model, loop, inputs
        self.callback, self.heartbeat = callback, heartbeat
        self.thetas = thetas
        self.stepper = stepper(members)
        self.state = self.stepper.start(thetas)
        self.objective = BatchObjective(model)
        self.active = list(range(k))  # the members still training, in row order
        self.rows: list[list[dict[str, Any]]] = [[] for _ in range(k)]
        self.results: list[TrainResult | None] = [None] * k
        self.first_cost = np.full(k, np.nan)
        self.progress: dict[str, Any] = {
            "iteration": 0, "epoch": 0.0, "samples": 0, "batch_rows": inputs.batch_size
        }  # fmt: skip
        self.running = [0.0] * k  # summed minibatch losses since the last point, per member
        self.n_running = 0
        self.own_clock = k == 1  # a run alone: timed on its own clocks
        self.clock = TrainingClock()

    def run(self, rng: np.random.Generator) -> list[TrainResult]:
        try:
            if self._start():
                self._train(rng)
        except KeyboardInterrupt:
            self._end_all(Status.INTERRUPTED, f"interrupted after iteration {self._it()}")
        except TooManyEvaluations:  # a budget not counted ahead (epochs, seconds) under eval every
            self._end_all(
                Status.FAILED,
                f"stopped at iteration {self._it()}: more than the {settings.MAX_EVAL_POINTS:,} "
                "evaluation points a run records; evaluate less often",
            )
        return [r for r in self.results if r is not None]

    def _it(self) -> int:
        return self.progress["iteration"]

    def _start(self) -> bool:
        """The first point, before any step; members whose starting cost is not
        finite end there. Whether any member goes on."""
        firsts = self._evaluate(list(range(len(self.active))))
        self.first_cost[:] = [row["train_cost"] for row in firsts]
        bad = {p: (Status.DIVERGED, "the starting cost is not finite")
               for p, cost in enumerate(self.first_cost) if not math.isfinite(cost)}  # fmt: skip
        if bad:
            self._end(bad, tested=False)
        return bool(self.active)

    # One method on purpose, longer than the rest: every step pays no call it can avoid.
    def _train(self, rng: np.random.Generator) -> None:
        """Step until every member has ended."""
        loop, schedule, objective = self.loop, self.inputs.schedule, self.objective
        budget, progress, stepper, state = loop.budget, self.progress, self.stepper, self.state
        X, y, heartbeat = self.inputs.X, self.inputs.y, self.heartbeat
        # a time budget, or evaluation points spread over time, read the clock every step
        timed = budget.max_seconds is not None or schedule.axis == "train_seconds"
        seconds = 0.0
        batches = minibatches(len(X), self.inputs.batch_size, rng, loop.batch_growth)
        while self.active:
            idx, n_pass, i, n_batches = next(batches)
            objective.select(X, y, idx)
            losses = stepper.update(objective, self.thetas, state)

            it = progress["iteration"] = progress["iteration"] + 1
            if heartbeat is not None:
                heartbeat(it)
            progress["epoch"] = n_pass + (i + 1) / n_batches
            progress["samples"] += len(idx)
            progress["batch_rows"] = len(idx)
            values = losses.tolist()
            running = self.running
            for p, loss in enumerate(values):
                running[p] += loss
            self.n_running += 1
            if timed:
                seconds = self.clock.training_seconds()
            done = budget.exhausted(it, progress["epoch"], objective.n_evals, seconds)
            if not math.isfinite(sum(values)):  # a member's loss may not be finite
                self._lose(values, it)
                if not self.active:
                    break
            due = schedule.due(progress, i + 1 == n_batches, objective.n_evals, seconds)
            if due or done:
                self._point(it, done)

    def _lose(self, losses: list[float], it: int) -> None:
        """The members whose minibatch loss is not finite end, diverged, at a row
        of their own."""
        lost = [p for p, loss in enumerate(losses) if not math.isfinite(loss)]
        if lost:
            self._evaluate(lost)
            self._end({p: (Status.DIVERGED, f"minibatch loss became {losses[p]} at iteration {it}")
                       for p in lost})  # fmt: skip

    def _point(self, it: int, done: bool) -> None:
        """An evaluation point: every member's row, then who ends here."""
        prev = [self.rows[j][-1]["train_cost"] for j in self.active]
        new = self._evaluate(list(range(len(self.active))))
        self.running = [0.0] * len(self.active)
        self.n_running = 0
        ends = {}
        for p, row in enumerate(new):
            end = self._stop(p, row, prev[p], it, done)
            if end is not None:
                ends[p] = end
        if ends:
            self._end(ends)

    def _stop(self, p: int, row: dict[str, Any], prev: float, it: int, done: bool) -> End | None:
        """Whether the active member ``p`` ends at this row, and how: the stop
        rules, in order (divergence, the callback, convergence, the budget)."""
        loop = self.loop
        cost, start = row["train_cost"], self.first_cost[self.active[p]]
        if not math.isfinite(cost) or cost > loop.divergence_factor * max(start, 1e-12):
            return Status.DIVERGED, f"training cost {cost:.4g} at iteration {it} (from {start:.4g})"
        if self.callback is not None and self.callback(dict(row, theta=self.thetas[p])):
            return Status.STOPPED, f"the callback stopped the run at iteration {it}"
        if loop.tol is not None and abs(cost - prev) < loop.tol:
            return Status.CONVERGED, f"training cost changed by less than {loop.tol:g}"
        if done:
            return Status.COMPLETED, ""
        return None

    def _evaluate(self, which: list[int]) -> list[dict[str, Any]]:
        """Rows for the active members at positions ``which``, off the training clock."""
        if len(self.rows[self.active[which[0]]]) > settings.MAX_EVAL_POINTS:
            raise TooManyEvaluations  # the start and the points a run may record
        self.clock.pause()
        t0 = time.perf_counter()
        model, inputs = self.model, self.inputs
        sub = self.thetas if len(which) == len(self.active) else self.thetas[which]
        base = dict(self.progress, grad_evals=self.objective.n_evals)
        new = [dict(base) for _ in which]
        test = inputs.test if self.loop.test_curve else None  # else at the end (_end)
        # Weights gone to NaN or inf are reported as a non-finite cost, not warned about.
        with np.errstate(invalid="ignore", over="ignore"):
            if inputs.train_eval is not None:
                scores = {"train": model.evaluate_members(sub, *inputs.train_eval)}
            elif self.n_running:  # the mean minibatch loss since the last point
                scores = {"train": [(self.running[p] / self.n_running, np.nan) for p in which]}
            else:  # the first: a minibatch of its own
                bs = inputs.batch_size
                first = model.evaluate_members(sub, inputs.X[:bs], inputs.y[:bs])
                scores = {"train": [(cost, np.nan) for cost, _ in first]}
            for name, split in (("val", inputs.valid), ("test", test)):
                none = [(np.nan, np.nan)] * len(which)
                scores[name] = model.evaluate_members(sub, *split) if split else none
        for name, pairs in scores.items():
            for row, (cost, acc) in zip(new, pairs):
                row[f"{name}_cost"], row[f"{name}_accuracy"] = cost, acc
        self.clock.eval += time.perf_counter() - t0
        for p, row in zip(which, new):
            row.update(self._seconds())
            self.rows[self.active[p]].append(row)
        self.clock.resume()
        return new

    def _seconds(self) -> dict[str, float]:
        """The clocks' columns of a row: a run alone's own, or the stack's."""
        clock = self.clock
        if self.own_clock:
            return {"train_seconds": clock.wall, "train_cpu_seconds": clock.cpu,
                    "eval_seconds": clock.eval}  # fmt: skip
        return {"train_seconds": np.nan, "train_cpu_seconds": np.nan, "eval_seconds": np.nan,
                "stack_seconds": clock.wall}  # fmt: skip

    def _end(self, ends: dict[int, End], tested: bool = True) -> None:
        """The active members at the positions in ``ends`` end with their status
        and message; the test split is evaluated at their last point (unless
        evaluated at every point), off the training clock."""
        which = sorted(ends)
        inputs = self.inputs
        if tested and inputs.test is not None and not self.loop.test_curve:
            self.clock.pause()
            t0 = time.perf_counter()
            with np.errstate(invalid="ignore", over="ignore"):
                scores = self.model.evaluate_members(self.thetas[which], *inputs.test)
            self.clock.eval += time.perf_counter() - t0
            for p, (cost, acc) in zip(which, scores):
                last = self.rows[self.active[p]][-1]
                last["test_cost"], last["test_accuracy"] = cost, acc
                if self.own_clock:
                    last["eval_seconds"] = self.clock.eval
            self.clock.resume()
        for p in which:
            j = self.active[p]
            status, message = ends[p]
            self.results[j] = TrainResult(
                self.thetas[p].copy(), self.rows[j], status, message, self._it(),
                self.objective.n_evals, self.stepper.member_state(self.state, p),
            )  # fmt: skip
        keep = np.ones(len(self.active), dtype=bool)
        keep[which] = False
        self.thetas = np.ascontiguousarray(self.thetas[keep])
        self.running = [r for p, r in enumerate(self.running) if keep[p]]
        self.stepper.keep(self.state, keep)
        self.active[:] = [j for p, j in enumerate(self.active) if keep[p]]

    def _end_all(self, status: Status, message: str) -> None:
        if self.active:
            self._end({p: (status, message) for p in range(len(self.active))})


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
    """The inputs of :func:`train_stack`, checked
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
