"""Seconds per epoch of nnbench's training loop on MNIST (50,000 rows).

Usage: python benchmarks/epoch_speed.py [--repeats 5] [--hidden 25] [--batch-sizes 50,100]
       [--threads 1]

Times one pass of plain GD (evaluation excluded) for each batch size and
dtype, repeated, and prints the median and the spread. The peer comparison
against scikit-learn and PyTorch lives in benchmarks/peers.py.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

from nnbench import data
from nnbench.build import build_run, run_values


def epoch_seconds(X, y, hidden, batch_size, dtype, seed=0) -> float:
    values = run_values(
        hidden=hidden,
        dtype=dtype,
        batch_size=batch_size,
        seed=seed,
        max_epochs=1,
        every=10**9,
        train_rows="running",
    )
    Xd = X.astype(dtype)  # cast once, outside the timing, as the runner does
    run = build_run(values, "gd", {"train": (Xd, y)}, 10)
    return run().rows[-1]["train_seconds"]  # the loop's own clock: evaluation excluded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", default="25")
    parser.add_argument("--batch-sizes", default="50,100")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    (X, y), _, _ = data.load_mnist()
    print(
        f"one epoch of GD over {len(X):,} rows, hidden {hidden}, {args.threads} BLAS "
        f"thread(s); median of {args.repeats}"
    )
    print(f"{'batch':>6} {'dtype':>8} {'median s':>9} {'min s':>7} {'max s':>7}")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        for dtype in ("float32", "float64"):
            epoch_seconds(X, y, hidden, bs, dtype)  # warm-up: page in, BLAS threads
            times = [epoch_seconds(X, y, hidden, bs, dtype) for _ in range(args.repeats)]
            print(
                f"{bs:>6} {dtype:>8} {statistics.median(times):>9.4f} "
                f"{min(times):>7.4f} {max(times):>7.4f}"
            )
    print(f"numpy {np.__version__}")


if __name__ == "__main__":
    main()
