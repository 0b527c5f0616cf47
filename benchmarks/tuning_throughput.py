"""Tuning throughput: trial runs per second for one tuning cell, stacked vs alone.

Usage: python benchmarks/tuning_throughput.py [--optimizer adam] [--trials 12]
       [--batch 50] [--epochs 1] [--hidden 25 128 100-50] [--jobs 1] [--repeats 2]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--hidden", nargs="+", default=["25", "128", "100-50"])
    parser.add_argument("--jobs", type=int, default=1, help="runs (or stacks) at once")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
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
