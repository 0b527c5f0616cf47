"""Tuning throughput: trial runs per second for one tuning cell, stacked vs alone.

Usage: python benchmarks/tuning_throughput.py [--optimizer adam] [--trials 12]
       [--batch 50] [--epochs 1] [--hidden 25 128 100-50] [--jobs 1] [--repeats 2]
       [--parts]

For each architecture, the trial runs of one tuning cell of
``experiments/extended.toml`` (MNIST, float32, softmax output; ``--trials``
learning rates drawn from the optimizer's default space, one seed) are run
through nnbench's runner twice into fresh folders: once as one stack (the
default: one process trains them together, :mod:`nnbench.stack`), once with
``stack=False`` (``--no-stack``: a process and a pass over the data per
trial). Both orders alternate over ``--repeats``; the best wall time of each
is kept, so a burst of load elsewhere on the machine does not count against
either. Both results must be the same numbers (the runs' metrics are
compared); the ratio is what stacking buys.

``--parts`` times the pieces of one training step instead, stacked against
``--trials`` single runs (random weights, one BLAS thread, best of 3 rounds
of 200 steps): the gradient pass and the optimizer's update; and, for
evaluation, the batched first-layer product that stacking uses (one BLAS
call per trial, the same call a single run makes) against one wide product
of all trials' weights side by side (one call), with whether the wide
product gives the same bits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from nnbench import experiment, results, runner, tune
from nnbench.train import METRICS


def trials_of(args: argparse.Namespace, hidden: list[int]) -> list:
    exp = experiment.validate(
        {
            "name": "throughput",
            "data": {"dataset": "mnist", "dtype": "float32"},
            "model": {"hidden": [hidden], "activation": "sigmoid", "output": "softmax"},
            "grid": {"batch_size": [args.batch], "seeds": [1]},
            "budget": {"max_epochs": args.epochs},
            "tune": {"trials": args.trials, "seed": 0, "final_seeds": [101]},
            "optimizer": [{"name": args.optimizer}],
        }
    )
    return tune.trial_runs(exp)


def timed(specs: list, out: Path, stack: bool, jobs: int) -> float:
    execution = runner.Execution(n_jobs=jobs, log=None, stack=stack)
    t0 = time.perf_counter()
    summary = runner.run_specs(specs, out, {"name": "throughput"}, execution)
    seconds = time.perf_counter() - t0
    if summary.statuses.get("completed", 0) != len(specs):
        raise SystemExit(f"not every trial completed: {dict(summary.statuses)}")
    return seconds


def same_numbers(a: Path, b: Path) -> bool:
    timeless = [k for k in METRICS if not k.endswith("seconds")]
    runs_a, runs_b = results.stored_runs(a), results.stored_runs(b)
    return runs_a.keys() == runs_b.keys() and all(
        pd.read_parquet(runs_a[k].path)[timeless].equals(pd.read_parquet(runs_b[k].path)[timeless])
        for k in runs_a
    )


def best_of(f, reps: int = 200, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def parts(args: argparse.Namespace) -> None:
    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    rng = np.random.default_rng(0)
    print(f"{args.optimizer}, {args.trials} trials, batch {args.batch}, float32, 1 BLAS thread;")
    print("ms per step (stacked vs the trials alone) and per 5,000-row evaluation product")
    print(f"{'hidden':>8} {'pass':>19} {'update':>19} {'eval product':>30}  wide same bits")
    for text in args.hidden:
        print(f"{text:>8} " + parts_of(args, [int(h) for h in text.split("-")], rng))


def parts_of(args: argparse.Namespace, hidden: list[int], rng) -> str:
    import numpy as np

    from nnbench import optimizers
    from nnbench.mlp import EVAL_CHUNK, MLP
    from nnbench.optimizers.base import Stack

    k, n = args.trials, args.batch
    model = MLP((784, *hidden, 10), "sigmoid", "softmax", 0.0, "float32")
    thetas = np.stack([model.init(rng) for _ in range(k)])
    singles = [thetas[j : j + 1].copy() for j in range(k)]  # each run alone: a stack of one
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    grads, grad = np.empty_like(thetas), np.empty((1, model.n_params), np.float32)
    members = [optimizers.make(args.optimizer, {"learning_rate": 1e-3 * (j + 1)}) for j in range(k)]
    together = Stack(members)
    state = together.start(thetas)
    alone = [Stack([m]) for m in members]
    states = [a.start(s) for a, s in zip(alone, singles)]
    zero, zero1 = np.zeros(k), np.zeros(1)

    def alone_steps() -> None:
        for a, s, x in zip(alone, singles, states):
            a.update(lambda _: (zero1, grad), s, x)

    pass_s = best_of(lambda: model.losses_and_grads(thetas, X, y, grads))
    pass_1 = best_of(lambda: [model.losses_and_grads(s, X, y, grad) for s in singles])
    step_s = best_of(lambda: together.update(lambda _: (zero, grads), thetas, state))
    step_1 = best_of(alone_steps)
    Xe = rng.random((EVAL_CHUNK, 784), dtype=np.float32)
    W = model.layout.blocks(thetas)[0][:, 1:]

    def batched() -> np.ndarray:
        return np.matmul(W.transpose(0, 2, 1), Xe.T)

    def wide() -> np.ndarray:
        return (np.concatenate(list(W), axis=1).T @ Xe.T).reshape(k, -1, EVAL_CHUNK)

    batched_s, wide_s = best_of(batched, reps=5), best_of(wide, reps=5)
    same = np.array_equal(wide(), batched())
    return (
        f"{pass_s * 1e3:5.2f} vs {pass_1 * 1e3:5.2f} ({pass_s / pass_1:.2f}) "
        f"{step_s * 1e3:5.2f} vs {step_1 * 1e3:5.2f} ({step_s / step_1:.2f}) "
        f"batched {batched_s * 1e3:6.1f}, wide {wide_s * 1e3:6.1f} ({wide_s / batched_s:.2f})  "
        f"{'yes' if same else 'no'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--hidden", nargs="+", default=["25", "128", "100-50"])
    parser.add_argument("--jobs", type=int, default=1, help="runs (or stacks) at once")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", action="store_true", help="time a step's pieces instead")
    args = parser.parse_args()
    if args.parts:
        parts(args)
        return
    print(
        f"{args.optimizer}, {args.trials} trials, batch {args.batch}, {args.epochs:g} epoch(s), "
        f"MNIST float32, -j {args.jobs}, 1 BLAS thread; best of {args.repeats}"
    )
    print(f"{'hidden':>8} {'alone s':>8} {'stacked s':>9} {'alone/s':>8} {'stacked/s':>9} "
          f"{'ratio':>6}  same numbers")  # fmt: skip
    for text in args.hidden:
        hidden = [int(h) for h in text.split("-")]
        specs = trials_of(args, hidden)
        best = {True: float("inf"), False: float("inf")}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for stack in (r % 2 == 0, r % 2 == 1):
                    out = Path(tmp) / f"{'stacked' if stack else 'alone'}-{r}"
                    best[stack] = min(best[stack], timed(specs, out, stack, args.jobs))
            same = same_numbers(Path(tmp) / "stacked-0", Path(tmp) / "alone-0")
        n = len(specs)
        print(
            f"{text:>8} {best[False]:8.2f} {best[True]:9.2f} {n / best[False]:8.2f} "
            f"{n / best[True]:9.2f} {best[True] / best[False]:6.2f}  {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
