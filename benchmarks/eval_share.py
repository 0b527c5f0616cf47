"""How much of a run's wall time evaluation takes, at the default evaluation settings.

Usage: python benchmarks/eval_share.py [--epochs 4,10] [--threads 1] [--out results/eval-share.md]

For each architecture x batch size of the extended study (MNIST, float32,
sigmoid hidden layers, softmax output), one run of GD and one of Adam with
the defaults of ``[eval]`` (``points`` evaluations spread over the budget,
training metrics on a fixed subset of ``train_rows`` rows, the validation set
whole, the test set at the last point), and the share of its time spent
evaluating: ``eval_seconds / (train_seconds + eval_seconds)``, both measured
by the training loop itself. The goal: at most a quarter. Beside it, the
share that matrix products alone would give: the evaluation's first-layer
multiply-adds over the run's, training counted as two products a row (the
forward pass and the weight gradient).
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
    parser.add_argument("--epochs", default="4,10", help="budgets, comma-separated (default 4,10)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--out", default="results/eval-share.md")
    args = parser.parse_args()
    budgets = [float(e) for e in args.epochs.split(",")]
    threadpool_limits(args.threads)
    ds = data.load_dataset("mnist", mmap=True)
    splits = {
        name: (X.astype("float32"), y)
        for name, (X, y) in (("train", ds.train), ("valid", ds.valid), ("test", ds.test))
    }
    lines = [
        "| epochs | hidden | batch | optimizer | training s | evaluation s | evaluations "
        "| share | products-only share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    worst = dict.fromkeys(budgets, 0.0)
    for epochs in budgets:
        for hidden, batch in CELLS:
            for name, options in OPTIMIZERS:
                values = run_values(
                    hidden=hidden,
                    batch_size=batch,
                    output="softmax",
                    dtype="float32",
                    max_epochs=epochs,
                    seed=1,
                )
                result = build_run(values, name, splits, 10, options)()
                last, n_evals = result.rows[-1], len(result.rows)
                share = last["eval_seconds"] / (last["train_seconds"] + last["eval_seconds"])
                worst[epochs] = max(worst[epochs], share)
                line = (
                    f"| {epochs:g} | {'-'.join(map(str, hidden))} | {batch} | {name} | "
                    f"{last['train_seconds']:.2f} | {last['eval_seconds']:.2f} | {n_evals} | "
                    f"{share:.0%} | {products_share(values, splits, n_evals, last):.0%} |"
                )
                lines.append(line)
                print(line, flush=True)
    largest = ", ".join(f"{w:.0%} at {e:g} epochs" for e, w in worst.items())
    note = (
        f"\nMNIST, float32, the default evaluation ([eval] points = {values['points']}, "
        f"train_rows = {values['train_rows']}), {args.threads} BLAS thread(s), "
        f"{os.cpu_count()} cores. Largest share: {largest}. *Products-only share*: what the "
        "share would be if evaluation and training ran only their first-layer matrix "
        "products, at one speed (evaluated rows over evaluated rows plus twice the trained "
        "rows). Made by `python benchmarks/eval_share.py`.\n"
    )
    print(note)
    if args.out:
        Path(args.out).write_text(
            "# Evaluation's share of a run\n\n" + "\n".join(lines) + "\n" + note
        )


def products_share(values: dict, splits: dict, n_evals: int, last: dict) -> float:
    """The evaluated rows over those plus twice the trained rows: the share of the
    first layer's multiply-adds that evaluation makes (the training subset and the
    validation set at every point, the test set at the last)."""
    subset = min(values["train_rows"], len(splits["train"][0]))
    evaluated = n_evals * (subset + len(splits["valid"][0])) + len(splits["test"][0])
    return evaluated / (evaluated + 2 * last["samples"])


if __name__ == "__main__":
    main()
