"""How much of a run's wall time evaluation takes, at the default evaluation settings.

Usage: python benchmarks/eval_share.py [--epochs 5] [--threads 1] [--out results/eval-share.md]

For each architecture x batch size of the extended study (MNIST, float32,
sigmoid hidden layers, softmax output), one run of GD and one of Adam with
the defaults of ``[eval]`` (20 points spread over the budget, training
metrics on a fixed subset of 10,000 rows, validation and test sets whole),
and the share of its time spent evaluating: ``eval_seconds / (train_seconds
+ eval_seconds)``, both measured by the training loop itself. The goal: at
most a quarter.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from threadpoolctl import threadpool_limits

from nnbench import data
from nnbench.build import build_run, run_values

CELLS = [((25,), 50), ((25,), 200), ((128,), 50), ((128,), 200), ((100, 50), 50), ((100, 50), 200)]
OPTIMIZERS = [("gd", {"learning_rate": 1.0}), ("adam", {"learning_rate": 0.003})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--out", default="results/eval-share.md")
    args = parser.parse_args()
    threadpool_limits(args.threads)
    ds = data.load_dataset("mnist", mmap=True)
    splits = {
        name: (X.astype("float32"), y)
        for name, (X, y) in (("train", ds.train), ("valid", ds.valid), ("test", ds.test))
    }
    lines = [
        "| hidden | batch | optimizer | training s | evaluation s | evaluations | share |",
        "|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for hidden, batch in CELLS:
        for name, options in OPTIMIZERS:
            values = run_values(
                hidden=hidden,
                batch_size=batch,
                output="softmax",
                dtype="float32",
                max_epochs=args.epochs,
                seed=1,
            )
            result = build_run(values, name, splits, 10, options)()
            last, n_evals = result.rows[-1], len(result.rows)
            share = last["eval_seconds"] / (last["train_seconds"] + last["eval_seconds"])
            worst = max(worst, share)
            line = (
                f"| {'-'.join(map(str, hidden))} | {batch} | {name} | "
                f"{last['train_seconds']:.2f} | {last['eval_seconds']:.2f} | {n_evals} | "
                f"{share:.0%} |"
            )
            lines.append(line)
            print(line, flush=True)
    note = (
        f"\nMNIST, float32, {args.epochs:g} epochs, the default evaluation ([eval] points = 20, "
        f"train_rows = 10000), {args.threads} BLAS thread(s), {os.cpu_count()} cores. Largest "
        f"share: {worst:.0%}. Made by `python benchmarks/eval_share.py`.\n"
    )
    print(note)
    if args.out:
        Path(args.out).write_text(
            "# Evaluation's share of a run\n\n" + "\n".join(lines) + "\n" + note
        )


if __name__ == "__main__":
    main()
