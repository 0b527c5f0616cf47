"""Stacked trials: K copies of one network, trained together as one computation.

Trials of a tuning study that share a seed start from the same weights and
see the same minibatches; only their optimizer's settings differ. A stack
trains them together: their K flat vectors are the rows of one ``(K,
n_params)`` array, every layer's products are batched over the K members
(one call that loops in C over K matrix products, instead of K Python calls
each), the minibatch is gathered once, and one evaluation pass scores all K.

Every member computes exactly what it would alone: the batched products
make the same BLAS call per member as a single run, element-wise work is
element-wise, and the cost sums are taken per member as a single run takes
them. A stacked trial's weights and metrics are therefore bit for bit those
of the same trial run alone (``tests/test_stack.py`` checks it for every
built-in first-order optimizer; the gate's mutation study checks it on the
CI grids).

What a stack cannot give is one run's training time: its clock runs for
all K members at once. Its rows carry the stack's seconds in their own
column, ``stack_seconds``; ``train_seconds``, ``train_cpu_seconds`` and
``eval_seconds`` are left empty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnbench.functions import activate, backprop_activation, label_positions
from nnbench.functions import output_cost_and_delta as _output_cost_and_delta
from nnbench.mlp import EVAL_CHUNK, MLP
from nnbench.optimizers import Optimizer
from nnbench.optimizers.base import Stack
from nnbench.status import Status
from nnbench.train import (
    BatchObjective,
    EvalSchedule,
    LoopSettings,
    TrainResult,
    loop_inputs,
    minibatches,
)

if TYPE_CHECKING:
    from nnbench.data.formats import Split

# The most members a stack takes: memory grows with K (a (K, n_params) array
# per optimizer state entry), the gain stops growing long before.
MAX_STACK = 32
# ... and at most this many weights in all (K x n_params): 8 million, 32 MB
# in float32 per array (Adam keeps five such arrays with its temporaries).
# The extended study's largest network (101,770 weights) stacks 32 trials;
# a 784-500-300-10 network (545,810) stacks 14.
MAX_STACK_PARAMS = 8_000_000
# ... and at most this many activations (K x batch rows x the widths of the
# hidden and output layers, each held about twice: values and deltas) unless
# one member alone needs more: a stack's worker then holds one run's
# activations, or 4 million numbers (16 MB in float32) when that is more, never
# K times a run's. Full-batch MNIST with hidden [100] (6.6 million a member)
# trains alone; 128-row minibatches of it stack 32 trials.
MAX_STACK_ACTIVATIONS = 4_000_000
# Evaluation scores at most this many activations at once (per layer, all
# members' rows of a chunk together); more members are scored in groups, the
# same numbers: each member's chunks are unchanged.
EVAL_ACTIVATIONS = 4_000_000


def max_members(n_params: int, batch_rows: int | None, widths: Sequence[int]) -> int:
    """How many members a stack of a network with ``n_params`` weights may hold,
    training on minibatches of up to ``batch_rows`` rows (None: not known) with
    layers of these ``widths`` (hidden and output): within :data:`MAX_STACK`,
    :data:`MAX_STACK_PARAMS` weights and :data:`MAX_STACK_ACTIVATIONS`; at least 1."""
    size = min(MAX_STACK, MAX_STACK_PARAMS // max(1, n_params))
    if batch_rows is not None:
        size = min(size, MAX_STACK_ACTIVATIONS // max(1, batch_rows * sum(widths)))
    return max(1, size)


def blocks(model: MLP, thetas: np.ndarray) -> list[np.ndarray]:
    """Per-layer ``(K, fan_in + 1, fan_out)`` views of the stacked vectors ``(K, n_params)``."""
    k = thetas.shape[0]
    return [thetas[:, s:e].reshape(k, *shape) for s, e, shape in model.layout.bounds]


def loss_and_grad(
    model: MLP, thetas: np.ndarray, X: np.ndarray, y: np.ndarray, grads: np.ndarray
) -> np.ndarray:
    """Every member's mean minibatch cost ``(K,)``; their gradients written into ``grads``.

    The same computation as :meth:`MLP._loss_and_grad` for each row of
    ``thetas``, with its contract (``X`` of the model's dtype, no checks),
    batched: hidden layers sample-major ``(K, n, width)``, the output
    class-major ``(K, n_outputs, n)``.
    """
    n = X.shape[0]
    k = thetas.shape[0]
    layers = blocks(model, thetas)
    grad_layers = blocks(model, grads)
    hidden = []
    a = X
    for block in layers[:-1]:
        h = np.matmul(a, block[:, 1:])
        h += block[:, :1]
        activate(model.activation, h)
        hidden.append(h)
        a = h
    top = layers[-1]
    at = a.T if a.ndim == 2 else a.transpose(0, 2, 1)
    z = np.matmul(top[:, 1:].transpose(0, 2, 1), at)
    z += top[:, 0, :, None]
    costs = output_cost_and_delta(model.output, z, y)
    z *= 1.0 / n
    g = grad_layers[-1]
    np.matmul(at, z.transpose(0, 2, 1), out=g[:, 1:])
    ones = np.ones(n, dtype=model.dtype)
    np.matmul(z, ones, out=g[:, 0])
    if hidden:
        delta = np.matmul(z.transpose(0, 2, 1), top[:, 1:].transpose(0, 2, 1))
        for i in range(len(hidden) - 1, -1, -1):
            backprop_activation(model.activation, delta, hidden[i])
            g = grad_layers[i]
            below = hidden[i - 1].transpose(0, 2, 1) if i else X.T
            np.matmul(below, delta, out=g[:, 1:])
            np.matmul(ones, delta, out=g[:, 0])
            if i:
                delta = np.matmul(delta, layers[i][:, 1:].transpose(0, 2, 1))
    losses = costs / n
    if model.l2:
        for j in range(k):
            losses[j] += model._penalty(thetas[j], n)
        for g, block in zip(grad_layers, layers):
            g[:, 1:] += (model.l2 / n) * block[:, 1:]
    return losses


def output_cost_and_delta(name: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`nnbench.functions.output_cost_and_delta` for each member of ``z``
    ``(K, n_classes, n)``: the summed costs ``(K,)``; ``z`` becomes ``p - Y``.

    The element-wise work is done on the whole stack; the sums are taken per
    member, as a single run takes them, so that each cost is the same number.
    """
    k, _, n = z.shape
    flat = z.reshape(k, -1)
    pos = label_positions(y, n)
    costs = np.empty(k)
    if name == "sigmoid":
        picked = flat[:, pos]
        work = np.maximum(z, 0)
        for j in range(k):
            costs[j] = (
                float(work[j].sum(dtype=np.float64))
                + z[j].size * math.log(2.0)
                - float(picked[j].sum(dtype=np.float64))
            )
        z *= 0.5
        np.tanh(z, out=z)
        np.abs(z, out=work)
        work += 1
        np.log(work, out=work)
        for j in range(k):
            costs[j] -= float(work[j].sum(dtype=np.float64))
        z *= 0.5
        z += 0.5
    elif name == "softmax":
        z -= np.maximum.reduce(z, axis=1)[:, None, :]
        picked = flat[:, pos]
        np.exp(z, out=z)
        total = np.add.reduce(z, axis=1)
        logs = np.log(total)
        for j in range(k):
            costs[j] = float(logs[j].sum(dtype=np.float64)) - float(picked[j].sum(dtype=np.float64))
        z /= total[:, None, :]
    else:
        return np.array([_output_cost_and_delta(name, z[j], y) for j in range(k)])
    flat[:, pos] -= 1
    return costs


def evaluate(
    model: MLP, thetas: np.ndarray, X: np.ndarray, y: np.ndarray
) -> list[tuple[float, float]]:
    """``(mean cost, accuracy)`` of every member over the rows of ``X``: one
    batched forward pass per chunk of rows, the same numbers as
    :meth:`MLP.evaluate` per member."""
    n = len(X)
    k = thetas.shape[0]
    widest = max(model.layout.sizes[1:])
    group = max(1, EVAL_ACTIVATIONS // (widest * min(n, EVAL_CHUNK)))
    if k > group:
        return [s for g in range(0, k, group) for s in evaluate(model, thetas[g : g + group], X, y)]
    layers = blocks(model, thetas)
    cost = [0.0] * k
    correct = [0] * k
    last = model.layout.n_layers - 1
    for start in range(0, n, EVAL_CHUNK):
        Xc = X[start : start + EVAL_CHUNK]
        yc = np.asarray(y[start : start + EVAL_CHUNK])
        a_t = Xc.T
        for i, block in enumerate(layers):
            z_t = np.matmul(block[:, 1:].transpose(0, 2, 1), a_t)
            z_t += block[:, 0, :, None]
            if i < last:
                activate(model.activation, z_t)
            a_t = z_t
        hits = a_t.argmax(axis=1) == yc
        for j in range(k):
            correct[j] += int(np.count_nonzero(hits[j]))
            cost[j] += _output_cost_and_delta(model.output, a_t[j], yc)
    return [(cost[j] / n + model._penalty(thetas[j], n), correct[j] / n) for j in range(k)]


class StackObjective(BatchObjective):
    """``fun(thetas) -> (losses, grads)`` on the current minibatch, for a stack;
    counts every call. The minibatch is gathered once for all members, as
    :class:`~nnbench.train.BatchObjective` gathers it."""

    def __init__(self, model: MLP) -> None:
        super().__init__(model)
        self._grads: np.ndarray | None = None

    def __call__(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.n_evals += 1
        if self._grads is None or self._grads.shape != thetas.shape:
            self._grads = np.empty_like(thetas)
        return loss_and_grad(self.model, thetas, self.X, self.y, self._grads), self._grads


def stackable(loop: LoopSettings) -> str | None:
    """Why runs with these loop settings cannot share a stack (None: they can).

    A budget in seconds, or evaluation points spread over seconds, would read
    the stack's clock as if it were each run's: such runs train alone."""
    if loop.budget.max_seconds is not None:
        return "a budget in seconds (max_seconds)"
    if EvalSchedule(loop).axis == "train_seconds":
        return "evaluation points spread over seconds"
    return None


# One function on purpose, as train(): the loop's state stays in its locals.
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
    heartbeat: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train the K rows of ``thetas`` together, row ``j`` with ``members[j]``;
    one :class:`~nnbench.train.TrainResult` per member, in their order.

    The same loop as :func:`nnbench.train.train` for each member: the same
    minibatches, evaluation points, divergence and stopping rules. A member
    that diverges or converges leaves the stack (its rows and weights are
    final); the others go on. Every row's ``train_seconds``,
    ``train_cpu_seconds`` and ``eval_seconds`` are empty (NaN), and
    ``stack_seconds`` holds the stack's training seconds (wall clock).
    """
    why = stackable(loop)
    if why is not None:
        raise ValueError(f"runs with {why} cannot share a stack")
    inputs = loop_inputs(model, train_data, loop, valid, test)
    X, y, bs0, valid, test, train_eval, schedule = inputs
    n_samples = len(X)
    full = train_eval is not None
    budget = loop.budget

    k = len(members)
    thetas = np.ascontiguousarray(thetas, dtype=model.dtype)
    objective = StackObjective(model)
    opt = Stack(members)
    state = opt.start(thetas)
    active = list(range(k))  # the members still in the stack, in row order
    rows: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    results: list[TrainResult | None] = [None] * k
    first_cost = np.full(k, np.nan)
    progress: dict[str, Any] = {"iteration": 0, "epoch": 0.0, "samples": 0, "batch_rows": bs0}
    running = np.zeros(k)  # per active member
    n_running = 0
    untimed = dict.fromkeys(("train_seconds", "train_cpu_seconds", "eval_seconds"), np.nan)
    wall, wall0 = 0.0, time.perf_counter()

    def evaluate(which: list[int], with_test: bool = loop.test_curve) -> list[dict[str, Any]]:
        """Rows for the active members at positions ``which``."""
        nonlocal wall, wall0
        wall += time.perf_counter() - wall0
        sub = thetas if len(which) == len(active) else thetas[which]
        base = dict(progress, grad_evals=objective.n_evals, **untimed, stack_seconds=wall)
        new = [dict(base) for _ in which]
        with np.errstate(invalid="ignore", over="ignore"):
            if full:
                scores = evaluate_members(model, sub, *train_eval)
            elif n_running:
                scores = [(running[p] / n_running, np.nan) for p in which]
            else:
                scores = [(c, np.nan) for c, _ in evaluate_members(model, sub, X[:bs0], y[:bs0])]
            for row, (cost, acc) in zip(new, scores):
                row["train_cost"], row["train_accuracy"] = cost, acc
            for name, split in (("val", valid), ("test", test if with_test else None)):
                none = [(np.nan, np.nan)] * len(which)
                scores = evaluate_members(model, sub, *split) if split else none
                for row, (cost, acc) in zip(new, scores):
                    row[f"{name}_cost"], row[f"{name}_accuracy"] = cost, acc
        for p, row in zip(which, new):
            rows[active[p]].append(row)
        wall0 = time.perf_counter()
        return new

    def leave(ends: dict[int, tuple[Status, str]], tested: bool = True) -> None:
        """The active members at the positions in ``ends`` leave with their status
        and message; the test split is evaluated at their last point."""
        nonlocal thetas, running, wall0
        which = sorted(ends)
        if tested and test is not None and not loop.test_curve:
            t0 = time.perf_counter()
            with np.errstate(invalid="ignore", over="ignore"):
                scores = evaluate_members(model, thetas[which], *test)
            for p, (cost, acc) in zip(which, scores):
                last = rows[active[p]][-1]
                last["test_cost"], last["test_accuracy"] = cost, acc
            wall0 += time.perf_counter() - t0  # evaluation is not training
        for p in which:
            status, message = ends[p]
            j = active[p]
            results[j] = TrainResult(
                thetas[p].copy(),
                rows[j],
                status,
                message,
                progress["iteration"],
                objective.n_evals,
                member_state(state, p, len(active)),
            )
        keep = np.ones(len(active), dtype=bool)
        keep[which] = False
        if keep.all():
            return
        thetas = np.ascontiguousarray(thetas[keep])
        running = running[keep]
        opt.keep(state, keep)
        active[:] = [j for p, j in enumerate(active) if keep[p]]

    try:
        firsts = evaluate(list(range(k)))
        first_cost[:] = [row["train_cost"] for row in firsts]
        bad = {p: (Status.DIVERGED, "the starting cost is not finite")
               for p in range(k) if not math.isfinite(first_cost[p])}  # fmt: skip
        if bad:
            leave(bad, tested=False)
        batches = minibatches(n_samples, bs0, rng, loop.batch_growth)
        while active:
            idx, n_pass, i, n_batches = next(batches)
            objective.select(X, y, idx)
            losses = opt.update(objective, thetas, state)

            it = progress["iteration"] = progress["iteration"] + 1
            if heartbeat is not None:
                heartbeat(it)
            progress["epoch"] = n_pass + (i + 1) / n_batches
            progress["samples"] += len(idx)
            progress["batch_rows"] = len(idx)
            running += losses
            n_running += 1
            done = budget.exhausted(it, progress["epoch"], objective.n_evals, 0.0)
            lost = [p for p in range(len(active)) if not math.isfinite(losses[p])]
            if lost:
                evaluate(lost)
                leave({p: (Status.DIVERGED, f"minibatch loss became {losses[p]} at iteration {it}")
                       for p in lost})  # fmt: skip
                if not active:
                    break
            due = schedule.due(
                dict(progress, grad_evals=objective.n_evals, train_seconds=0.0), i + 1 == n_batches
            )
            if not (due or done):
                continue
            prev = [rows[j][-1]["train_cost"] for j in active]
            new = evaluate(list(range(len(active))))
            running[:] = 0.0
            n_running = 0
            ends: dict[int, tuple[Status, str]] = {}
            for p, row in enumerate(new):
                cost, start = row["train_cost"], first_cost[active[p]]
                if not math.isfinite(cost) or cost > loop.divergence_factor * max(start, 1e-12):
                    ends[p] = (
                        Status.DIVERGED,
                        f"training cost {cost:.4g} at iteration {it} (from {start:.4g})",
                    )
                elif loop.tol is not None and abs(cost - prev[p]) < loop.tol:
                    ends[p] = (Status.CONVERGED, f"training cost changed by less than {loop.tol:g}")
                elif done:
                    ends[p] = (Status.COMPLETED, "")
            if ends:
                leave(ends)
    except KeyboardInterrupt:
        if active:
            message = f"interrupted after iteration {progress['iteration']}"
            leave({p: (Status.INTERRUPTED, message) for p in range(len(active))})
    return [r for r in results if r is not None]


def member_state(state: dict[str, Any], p: int, k: int) -> dict[str, Any]:
    """Member ``p``'s own state out of a stack's (of ``k`` members), as ``step``
    keeps it: its row of every per-member array, a per-member column's
    number as a float, anything shared as it is (what ``diagnostics`` reads)."""

    def own(value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == k:
            if value.ndim == 2 and value.shape[1] == 1:
                return float(value[p, 0])
            return value[p].copy()
        return value

    return {key: own(value) for key, value in state.items()}


def evaluate_members(
    model: MLP, thetas: np.ndarray, X: np.ndarray, y: np.ndarray
) -> list[tuple[float, float]]:
    """:func:`evaluate`, or nothing for no members."""
    return evaluate(model, thetas, X, y) if len(thetas) else []
