"""A lone run as a stack of one: what it would cost to drop ``step`` for ``stack_step``.

Usage: python benchmarks/stack_of_one.py [--optimizers gd adam] [--hidden 25 128]
       [--steps 2000] [--rounds 6] [--out results/stack-of-one.md]

One engine for lone runs and stacked trials would train a lone run as a stack
of one, through each optimizer's vectorised update. This measures the price of
that for the update: the same training loop (``train.train``) on 10,000 MNIST
images, float32, softmax, batch 50, once with the optimizer's own ``step`` and
once with its ``stack_step`` on a ``(1, n_params)`` view of the weights (the
minibatch objective wrapped to return one loss and a ``(1, n_params)``
gradient). The two alternate over ``--rounds``; each keeps its best CPU time,
so a burst of load elsewhere counts against neither. The final weights must be
equal, bit for bit. The ratio (stack of one / alone) is the cost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nnbench import optimizers
from nnbench.data import load_dataset
from nnbench.mlp import MLP
from nnbench.optimizers.base import Stack
from nnbench.seeding import initial_weights, seed_rngs
from nnbench.train import Budget, LoopSettings, train


class StackOfOne:
    """An optimizer's vectorised update driving one run: ``start`` and ``update``
    as the training loop calls them, on a ``(1, n_params)`` view of the weights."""

    def __init__(self, opt: optimizers.Optimizer) -> None:
        self.stack = Stack([opt])
        self.row: np.ndarray | None = None

    def start(self, theta: np.ndarray) -> dict:
        self.row = theta[None]
        return self.stack.start(self.row)

    def update(self, fun, theta: np.ndarray, state: dict) -> float:
        def one(thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            loss, grad = fun(theta)
            return np.array([loss]), grad[None]

        return float(self.stack.update(one, self.row, state)[0])


def timed(name: str, hidden: tuple[int, ...], data: tuple, steps: int, one: bool) -> tuple:
    model = MLP((784, *hidden, 10), output="softmax", dtype="float32")
    theta = initial_weights(model, 1).copy()
    opt = optimizers.make(name, {})
    loop = LoopSettings(Budget(max_iter=steps), batch_size=50, points=2)
    t0 = time.process_time()
    result = train(model, theta, data, StackOfOne(opt) if one else opt, loop, seed_rngs(1)[1])
    return time.process_time() - t0, result.theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizers", nargs="+", default=["gd", "adam"])
    parser.add_argument("--hidden", nargs="+", default=["25", "128"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    X, y = load_dataset("mnist").train
    data = (np.ascontiguousarray(X[:10_000], dtype=np.float32), y[:10_000])
    lines = [
        "| optimizer | hidden | alone, CPU s | stack of one, CPU s | stack of one / alone "
        "| equal bit for bit |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in args.optimizers:
        for text in args.hidden:
            hidden = tuple(int(u) for u in text.split("-"))
            alone, stacked = [], []
            for _ in range(args.rounds):
                a, theta_a = timed(name, hidden, data, args.steps, one=False)
                b, theta_b = timed(name, hidden, data, args.steps, one=True)
                alone.append(a)
                stacked.append(b)
            equal = np.array_equal(theta_a, theta_b)
            ratio = min(stacked) / min(alone)
            lines.append(
                f"| {name} | {text} | {min(alone):.3f} | {min(stacked):.3f} | {ratio:.3f} "
                f"| {'yes' if equal else 'NO'} |"
            )
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(
            "# A lone run as a stack of one\n\n"
            f"`python benchmarks/stack_of_one.py --steps {args.steps} --rounds {args.rounds}`: "
            f"{args.steps} steps on 10,000 MNIST images, float32, batch 50; best CPU time "
            f"of {args.rounds} alternating rounds each.\n\n" + table
        )


if __name__ == "__main__":
    main()
