"""Where a CG or L-BFGS-B run's time goes: the gradients, nnbench's wrapper, scipy.

Usage: python benchmarks/scipy_overhead.py [--optimizer cg] [--hidden 128]
       [--batch 200] [--epochs 0.2] [--repeats 3]

Trains one run on MNIST (float32, softmax output, ``mb_maxiter`` 10, one BLAS
thread), as a final run of ``experiments/extended.toml`` trains, and splits
its CPU time, best of the repetitions:

- the objective: the minibatch's loss and gradient (nnbench's MLP);
- the wrapper: what ``nnbench.optimizers.scipy_based`` adds around each
  objective call (the gradient copied to float64) and around each
  minimisation (the start point cast, the result written back);
- scipy: everything else inside ``scipy.optimize.minimize`` (its function
  wrappers, which copy and compare every point, the line searches, the
  direction updates on float64 vectors of all the weights).

Only the first two are nnbench's to cut; the algorithms must stay scipy's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from nnbench.build import build_run, run_values
from nnbench.data import load_dataset
from nnbench.train import BatchObjective


def measure(args: argparse.Namespace, splits: dict, n_classes: int) -> dict[str, float]:
    spent = {"objective": 0.0, "minimize": 0.0, "step": 0.0}
    counts = {"evals": 0}
    real_call, real_minimize = BatchObjective.one, optimize.minimize
    from nnbench.optimizers import scipy_based

    real_step = scipy_based._ScipyMinimizer.step

    def call(self, theta):
        t = time.process_time()
        try:
            return real_call(self, theta)
        finally:
            spent["objective"] += time.process_time() - t
            counts["evals"] += 1

    def minimize(*a, **kw):
        t = time.process_time()
        try:
            return real_minimize(*a, **kw)
        finally:
            spent["minimize"] += time.process_time() - t

    def step(self, *a):
        t = time.process_time()
        try:
            return real_step(self, *a)
        finally:
            spent["step"] += time.process_time() - t

    BatchObjective.one, scipy_based.optimize.minimize = call, minimize
    scipy_based._ScipyMinimizer.step = step
    try:
        values = run_values(
            hidden=[args.hidden], batch_size=args.batch, dtype="float32", output="softmax",
            max_epochs=args.epochs, points=2,
        )  # fmt: skip
        run = build_run(values, args.optimizer, splits, n_classes, {"mb_maxiter": 10})
        with threadpool_limits(1):
            run()
    finally:
        BatchObjective.one, scipy_based.optimize.minimize = real_call, real_minimize
        scipy_based._ScipyMinimizer.step = real_step
    # The objective runs inside the wrapper's fun64, inside minimize, inside step.
    inside = spent["minimize"] - spent["objective"]
    return {
        "step": spent["step"],
        "objective": spent["objective"],
        "wrapper": spent["step"] - inside - spent["objective"],
        "scipy": inside,
        "evals": counts["evals"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="cg")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ds = load_dataset("mnist", mmap=True)
    splits = {"train": ds.train, "valid": ds.valid, "test": ds.test}
    best = min(
        (measure(args, splits, ds.n_classes) for _ in range(args.repeats)),
        key=lambda r: r["step"],
    )
    total = best["step"]
    print(
        f"{args.optimizer}, [{args.hidden}], batch {args.batch}, {args.epochs} epochs: "
        f"{best['evals']} gradient evaluations, steps {total:.2f} CPU s (best of {args.repeats})"
    )
    for part in ("objective", "wrapper", "scipy"):
        per_eval = best[part] / best["evals"] * 1e3
        print(
            f"  {part:<10} {best[part]:6.2f} s  {best[part] / total:6.1%}  {per_eval:.3f} ms/eval"
        )
    # The wrapper's float64 copy of each gradient runs inside minimize: timed apart.
    grad = np.ones(784 * args.hidden + (args.hidden + 1) * 10 + args.hidden, dtype=np.float32)
    t = time.perf_counter()
    for _ in range(1000):
        grad.astype(np.float64, copy=True)
    copy = (time.perf_counter() - t) / 1000 * 1e3
    print(f"  (of scipy's part, nnbench's float64 copy of each gradient: {copy:.3f} ms/eval)")


if __name__ == "__main__":
    main()
