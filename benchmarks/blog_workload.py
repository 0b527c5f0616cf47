"""The post's three 100-iteration runs: nnbench against the post's own algorithm.

Usage: python benchmarks/blog_workload.py [--repeats 3] [--skip-faithful]
       [--out results/blog-workload.md]

nnbench runs GD (learning rate 0.3), the post's RMSPROP (decay 0.9) and CG
(mb_maxiter 10) on MNIST exactly as ``experiments/blog.toml`` sets them
(784-25-10, float64, minibatches of 50, 100 iterations, evaluation on
train/validation/test every 25 iterations), timed end to end with the
evaluation included.

Beside it, a faithful re-implementation of the post's algorithm (written
here from its description, not its code): the bias inserted as a column of
ones into every batch, the gradient accumulated one row at a time in a
Python loop, the cost and the gradient as two separate functions (so scipy's
CG evaluates them separately), minibatches from a ``RandomState``
permutation, and the cost on the whole training set after every update, as
the post's ``tol`` test needs. It prints each run's seconds and the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import numpy as np
from scipy import optimize
from scipy.special import expit
from threadpoolctl import threadpool_limits

from nnbench import experiment
from nnbench.build import build_run
from nnbench.data import load_mnist
from nnbench.mlp import MLP

BLOG = Path(__file__).parent.parent / "experiments" / "blog.toml"
RUNS = (
    ("gd", {"learning_rate": 0.3}),
    ("rmsprop_blog", {"decay": 0.9}),
    ("cg", {"mb_maxiter": 10}),
)


# -- the post's algorithm, re-implemented faithfully -------------------------------------


def _matrices(weights, shapes):
    start = 0
    for rows, cols in shapes:
        yield weights[start : start + rows * cols].reshape(rows, cols)
        start += rows * cols


def post_cost(weights, X, y, shapes, n_labels):
    act = np.insert(X, 0, 1, axis=1)  # the bias column, copying the batch
    for W in _matrices(weights, shapes):
        h = expit(act @ W)
        act = np.insert(h, 0, 1, axis=1)
    Y = np.eye(n_labels)[y]
    return np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / len(X)


def post_gradient(weights, X, y, shapes, n_labels):
    Y = np.eye(n_labels)[y]
    mats = list(_matrices(weights, shapes))
    totals = [np.zeros(s) for s in shapes]
    for row, target in zip(np.insert(X, 0, 1, axis=1), Y):  # one row at a time
        acts = [row]
        for W in mats:
            acts.append(np.append(1.0, expit(acts[-1] @ W)))
        delta = acts[-1][1:] - target
        for i in range(len(mats) - 1, -1, -1):
            totals[i] += np.outer(acts[i], delta)
            if i:
                a = acts[i][1:]
                delta = (mats[i] @ delta)[1:] * a * (1 - a)
    return np.concatenate([t.ravel() for t in totals]) / len(X)


def post_fit(X, y, method, options, seed=1234, hidden=(25,), batch_size=50, maxiter=100):
    rnd = np.random.RandomState(seed)
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    shapes = [(a + 1, b) for a, b in itertools.pairwise(sizes)]
    weights = np.concatenate(
        [
            rnd.uniform(-4 * math.sqrt(6 / (r + c)), 4 * math.sqrt(6 / (r + c)), r * c)
            for r, c in shapes
        ]
    )
    args = (shapes, sizes[-1])
    lr, ms, prev = options.get("learning_rate", 0.0), 1.0, 1e8
    m = len(X)
    for i in range(1, maxiter + 1):
        j = (i - 1) % (m // batch_size)
        if j == 0:  # a fresh permutation per pass
            order = rnd.choice(np.arange(m), m, replace=False)
        idx = order[j * batch_size : (j + 1) * batch_size]
        Xb, yb = X[idx], y[idx]
        if method == "GD":
            weights -= lr * post_gradient(weights, Xb, yb, *args)
        elif method == "RMSPROP":
            g = post_gradient(weights, Xb, yb, *args)
            ms = options["decay"] * ms + (1 - options["decay"]) * g**2
            weights -= g / np.sqrt(ms + 1e-8)
        else:
            res = optimize.minimize(
                post_cost,
                weights,
                jac=post_gradient,
                method="CG",
                args=(Xb, yb, *args),
                options={"maxiter": options["mb_maxiter"]},
            )
            weights[:] = res.x
        cost = post_cost(weights, X, y, *args)  # the whole training set, every iteration
        if abs(cost - prev) < 1e-6:
            break
        prev = cost
    return weights


# -- the comparison ------------------------------------------------------------------------


def nnbench_run(name, options, data) -> dict:
    """One of the post's runs as ``experiments/blog.toml`` defines it (seed 1234),
    built by nnbench's ``build_run``, with a clock on the network's passes."""
    (X, y), valid, test = data
    spec = next(
        s
        for s in experiment.load_experiment(BLOG, {"grid.seeds": [1234]}).runs()
        if s.optimizer == name
    )
    run = build_run(
        spec.values, name, {"train": (X, y), "valid": valid, "test": test}, 10, spec.options
    )
    clock = {"passes": 0.0}
    inner = run.model.losses_and_grads

    def timed(*args):  # the objective's work, timed
        t0 = time.perf_counter()
        try:
            return inner(*args)
        finally:
            clock["passes"] += time.perf_counter() - t0

    run.model.losses_and_grads = timed
    t0 = time.perf_counter()
    result = run()
    last = result.rows[-1]
    return {
        "seconds": time.perf_counter() - t0,
        "val_accuracy": last["val_accuracy"],
        "train": last["train_seconds"],
        "passes": clock["passes"],
        "grad_evals": last["grad_evals"],
        "eval": last["eval_seconds"],
        "n_evals": len(result.rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-faithful",
        action="store_true",
        help="time nnbench only (the faithful runs take about a minute)",
    )
    parser.add_argument("--out", default="results/blog-workload.md")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="nnbench runs per method; the fastest is reported (the faithful one runs once)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads for both (default 1, as a grid run)"
    )
    args = parser.parse_args()
    threadpool_limits(args.threads)
    # float64 once, outside the timing, as the runner's shared data holds it
    train_set, valid, test = (
        (np.asarray(X, dtype=np.float64), np.asarray(y)) for X, y in load_mnist()
    )
    X, y = train_set
    data = (train_set, valid, test)
    nnbench_run("gd", {}, data)  # warm-up: page in the data, start BLAS threads

    lines = [
        "| run | nnbench s | training s | model passes s | other training s | "
        "evaluation s | gradient evaluations | nnbench val acc | faithful s | "
        "faithful val acc | faithful / nnbench |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    totals = dict.fromkeys(("seconds", "train", "passes", "eval", "faithful"), 0.0)
    methods = {"gd": "GD", "rmsprop_blog": "RMSPROP", "cg": "CG"}
    n_evals = 0
    for name, options in RUNS:
        run = min(
            (nnbench_run(name, options, data) for _ in range(args.repeats)),
            key=lambda r: r["seconds"],
        )
        for key in ("seconds", "train", "passes", "eval"):
            totals[key] += run[key]
        n_evals = run["n_evals"]
        cells = [
            name,
            f"{run['seconds']:.3f}",
            f"{run['train']:.3f}",
            f"{run['passes']:.3f}",
            f"{run['train'] - run['passes']:.3f}",
            f"{run['eval']:.3f}",
            str(run["grad_evals"]),
            f"{run['val_accuracy']:.4f}",
        ]
        if args.skip_faithful:
            cells += ["", "", ""]
        else:
            t0 = time.perf_counter()
            w = post_fit(X, y, methods[name], options)
            faithful = time.perf_counter() - t0
            totals["faithful"] += faithful
            model = MLP((784, 25, 10))
            f_acc = float(np.mean(model.predict(w, valid[0]) == valid[1]))
            cells += [f"{faithful:.1f}", f"{f_acc:.4f}", f"{faithful / run['seconds']:.0f}x"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    cells = [
        "all three",
        f"{totals['seconds']:.3f}",
        f"{totals['train']:.3f}",
        f"{totals['passes']:.3f}",
        f"{totals['train'] - totals['passes']:.3f}",
        f"{totals['eval']:.3f}",
        "",
        "",
    ]
    if totals["faithful"]:
        ratio = totals["faithful"] / totals["seconds"]
        cells += [f"{totals['faithful']:.1f}", "", f"{ratio:.0f}x"]
    else:
        cells += ["", "", ""]
    lines.append("| " + " | ".join(cells) + " |")
    print(lines[-1])
    note = (
        "\nThe post's three 100-iteration runs on MNIST (seed 1234, float64, minibatches "
        f"of 50), {args.threads} BLAS thread(s) for both implementations. nnbench: the "
        f"fastest of {args.repeats} runs, timed end to end: "
        f"training plus {n_evals} evaluations per run "
        "of the cost and accuracy on train, validation and test (70,000 rows, as the "
        "experiment file sets it). "
        "*Model passes* is the time inside the network's forward-backward pass; *other "
        "training* is the rest of the training loop, for CG almost all of it scipy's "
        "minimiser (line searches, its wrappers, the copies of the vector it makes). The "
        "faithful re-implementation computes the cost on the whole training set after "
        "every update, as the post did. Made by `python benchmarks/blog_workload.py`.\n"
    )
    if args.out:
        Path(args.out).write_text(
            "# The post's workload: nnbench against its own algorithm\n\n"
            + "\n".join(lines)
            + "\n"
            + note
        )


if __name__ == "__main__":
    main()
