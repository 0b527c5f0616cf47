"""Where one epoch of nnbench's training loop goes, on MNIST.

Usage: python benchmarks/epoch_breakdown.py [--hidden 25] [--batch 100]
       [--dtype float32] [--threads 2] [--repeats 7]

Times, alternating over repetitions, with the same BLAS threads:

- the whole epoch, as ``train`` runs it (plain GD, softmax output as in
  ``benchmarks/peers.py``; its own clock, evaluation excluded);
- the minibatch gather alone: ``BatchObjective.select`` for every batch of
  the epoch's permutation;
- the gather followed by the network's forward-backward pass, for every
  batch (the passes are this minus the gather alone);
- the epoch's matrix products alone, at their shapes (as in ``peers.py``).

The differences give the rest: activations, the cost and the small
products (passes minus products), and the loop with the optimizer's update
(epoch minus gather minus passes). Prints the best of the repetitions per
part, in milliseconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from peers import nnbench_epoch, peer_run, products_epoch
from threadpoolctl import threadpool_limits

from nnbench import data
from nnbench.train import BatchObjective


def parts(X, y, hidden, batch, dtype) -> dict[str, float]:
    out = {"epoch": nnbench_epoch(X, y, hidden, batch, dtype)}

    run = peer_run(X, y, hidden, batch, dtype)  # the epoch's model, start and batch order
    objective = BatchObjective(run.model)
    order = run.batch_rng.permutation(len(X))
    n_batches = len(X) // batch
    t0 = time.perf_counter()
    for i in range(n_batches):
        objective.select(X, y, order[i * batch : (i + 1) * batch])
    out["gather"] = time.perf_counter() - t0

    # gather and pass together, batch after batch: a pass on a freshly
    # gathered batch is slower than on one already in the cache
    theta = run.theta
    t0 = time.perf_counter()
    for i in range(n_batches):
        objective.select(X, y, order[i * batch : (i + 1) * batch])
        objective(theta)
    out["passes"] = time.perf_counter() - t0 - out["gather"]

    out["products"] = products_epoch(X, y, hidden, batch, dtype)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="25")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    limits = threadpool_limits(args.threads)
    (X, y), _, _ = data.load_mnist()
    X = np.ascontiguousarray(X, dtype=args.dtype)
    y = np.asarray(y, dtype=np.int64)
    parts(X, y, hidden, args.batch, args.dtype)  # warm-up
    runs = [parts(X, y, hidden, args.batch, args.dtype) for _ in range(args.repeats)]
    limits.restore_original_limits()
    # the best repetition of each part: other tenants of a shared machine only slow
    # a part down, never speed it up
    best = {k: min(r[k] for r in runs) * 1e3 for k in runs[0]}
    rows = [
        ("whole epoch", best["epoch"]),
        ("minibatch gather", best["gather"]),
        ("forward-backward passes", best["passes"]),
        ("  of which the big matrix products", best["products"]),
        ("  of which activations, cost, small products", best["passes"] - best["products"]),
        ("loop and optimizer update", best["epoch"] - best["gather"] - best["passes"]),
    ]
    print(
        f"one epoch, hidden {hidden}, batch {args.batch}, {args.dtype}, "
        f"{args.threads} BLAS thread(s); best of {args.repeats} per part, in ms"
    )
    for name, ms in rows:
        print(f"{name:<46} {ms:8.1f}  {ms / best['epoch']:6.1%}")


if __name__ == "__main__":
    main()
