"""One epoch of plain SGD on MNIST: nnbench against scikit-learn and PyTorch.

Usage: python benchmarks/peers.py [--repeats 7] [--quick] [--out results/peers.md]

For the same data (the 50,000 MNIST training rows), architecture (sigmoid
hidden layers, softmax output with cross-entropy, as both peers build it),
batch size, dtype and learning rate, it times one epoch of:

- nnbench's training loop (``train``; its own clock, evaluation excluded);
- scikit-learn's ``MLPClassifier(solver="sgd", momentum=0, max_iter=1)``;
- PyTorch: ``nn.Sequential`` + ``torch.optim.SGD``, a fresh ``randperm`` per
  epoch and indexed minibatches, with ``torch.set_num_threads`` set to the
  cores, the same BLAS threads the others use.

The contenders alternate within every repetition, so a slow spell of the
machine hits all of them. It prints each contender's best repetition, its
median and its worst, and each peer's time divided by nnbench's: best over best, and the
median of the ratios within a repetition. (On a shared machine, other
tenants only ever slow a run down: the best repetition is the closest to the
code's own speed, as ``timeit`` advises.) Two floors go beside them:
*products*, the epoch's matrix products alone at their real shapes, timed
in the same repetitions (what BLAS needs at this batch size, so the floor of
any numpy implementation), and *bound*, the epoch's matmul FLOPs at this
machine's large-matmul rate plus one read of the training set at its copy
bandwidth. It writes the table to ``--out``. A peer that is not installed
is skipped with a message (scikit-learn is one of nnbench's dependencies;
PyTorch: ``pip install -e ".[torch]"``, which takes the CPU build 2.13.0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnbench import data
from nnbench.build import Run, build_run, run_values
from nnbench.mlp import MLP

LEARNING_RATE = 0.1
CONFIGS = [((25,), 50), ((25,), 100), ((25,), 500), ((100,), 100), ((500, 300), 100)]


def machine_rates(dtype: str) -> tuple[float, float]:
    """Measured matmul FLOP/s (a large square product) and copy bandwidth (bytes/s)."""
    a = np.random.default_rng(0).random((2048, 2048)).astype(dtype)
    a @ a  # warm-up
    t0 = time.perf_counter()
    for _ in range(3):
        a @ a
    flops = 3 * 2 * 2048**3 / (time.perf_counter() - t0)
    big = np.ones(32 * 2**20, dtype=np.float64)  # 256 MiB, far beyond the caches
    out = np.empty_like(big)
    np.copyto(out, big)
    t0 = time.perf_counter()
    for _ in range(3):
        np.copyto(out, big)
    bandwidth = 3 * 2 * big.nbytes / (time.perf_counter() - t0)  # read + write
    return flops, bandwidth


def bound_seconds(n_rows: int, n_in: int, hidden, dtype: str, rates) -> float:
    """The epoch's floor: its matmul FLOPs at the large-matmul rate, plus one read of
    the training set (the minibatch gather) at the copy bandwidth."""
    sizes = [n_in, *hidden, 10]
    macs = [a * b for a, b in itertools.pairwise(sizes)]
    # forward, weight gradients, and deltas back through every layer but the first
    flops = 2 * n_rows * (2 * sum(macs) + sum(macs[1:]))
    flop_rate, bandwidth = rates
    return flops / flop_rate + n_rows * n_in * np.dtype(dtype).itemsize / bandwidth


def products_epoch(X, y, hidden, batch, dtype) -> float:
    """Only the epoch's matrix products, at their shapes, back to back: what BLAS
    alone needs for one epoch at this batch size, and so the floor of any
    numpy implementation (which also has to gather the rows and apply the
    activations)."""
    rng = np.random.default_rng(0)
    sizes = [X.shape[1], *hidden, 10]
    Ws = [rng.random((a, b), dtype=dtype) / a for a, b in itertools.pairwise(sizes)]
    acts = [X[:batch]] + [np.empty((batch, b), dtype=dtype) for b in sizes[1:]]
    grads = [np.empty_like(W) for W in Ws]
    # values of the size a real pass meets: no overflow, no subnormal numbers
    deltas = [rng.random((batch, b), dtype=dtype) / b for b in sizes[1:]]
    t0 = time.perf_counter()
    for _ in range(len(X) // batch):
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W, out=acts[i + 1])
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(acts[i].T, deltas[i], out=grads[i])
            if i:
                np.matmul(deltas[i], Ws[i].T, out=deltas[i - 1])
    return time.perf_counter() - t0


def peer_run(X, y, hidden, batch, dtype) -> Run:
    """One epoch of plain SGD as nnbench builds it: the network both peers build
    (sigmoid hidden layers, softmax output), seed 0, the running loss only."""
    values = run_values(
        hidden=hidden,
        output="softmax",
        dtype=dtype,
        batch_size=batch,
        seed=0,
        max_epochs=1,
        every=10**9,
        train_rows="running",
    )
    return build_run(values, "gd", {"train": (X, y)}, 10, {"learning_rate": LEARNING_RATE})


def peer_model(n_features: int, hidden, dtype) -> MLP:
    """The network both peers build: sigmoid hidden layers, softmax output."""
    return MLP((n_features, *hidden, 10), activation="sigmoid", output="softmax", dtype=dtype)


def nnbench_epoch(X, y, hidden, batch, dtype) -> float:
    result = peer_run(X, y, hidden, batch, dtype)()
    return result.rows[-1]["train_seconds"]  # the loop's own clock: evaluation excluded


def nnbench_fit(X, y, hidden, batch, dtype) -> float:
    """``MLPClassifier.fit`` for one epoch, end to end, with its default evaluation."""
    from nnbench import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        output="softmax",
        optimizer="gd",
        optimizer_options={"learning_rate": LEARNING_RATE},
        batch_size=batch,
        max_iter=1,  # one epoch (scikit-learn's unit)
        dtype=dtype,
        random_state=0,
    )
    t0 = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - t0


def sklearn_epoch(X, y, hidden, batch, dtype) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="logistic",
        solver="sgd",
        learning_rate_init=LEARNING_RATE,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=batch,
        max_iter=1,
        shuffle=True,
        random_state=0,
        tol=0.0,
        n_iter_no_change=10**9,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t0


def torch_epoch_factory(threads: int) -> Callable | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)  # torch's own pool: set explicitly, like the BLAS's

    def epoch(X, y, hidden, batch, dtype) -> float:
        tdtype = torch.float32 if dtype == "float32" else torch.float64
        Xt = torch.from_numpy(X)
        yt = torch.from_numpy(y)
        torch.manual_seed(0)
        layers, width = [], X.shape[1]
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.Sigmoid()]
            width = h
        model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10)).to(tdtype)
        opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.0)
        loss_fn = torch.nn.CrossEntropyLoss()
        t0 = time.perf_counter()
        perm = torch.randperm(len(Xt))
        for i in range(len(Xt) // batch):
            idx = perm[i * batch : (i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    return epoch


def fit_comparison(X, y, args) -> list[str]:
    """One-epoch ``fit`` of nnbench's estimator beside scikit-learn's, [25] at batch
    100, float32: what a user of either estimator waits for (input checks, the
    epoch, the default evaluation)."""
    Xd = np.ascontiguousarray(X, dtype="float32")
    yd = np.asarray(y, dtype=np.int64)
    hidden, batch = (25,), 100
    times: dict[str, list[float]] = {"nnbench fit": [], "scikit-learn fit": [], "nnbench epoch": []}
    fns = {
        "nnbench fit": nnbench_fit,
        "scikit-learn fit": sklearn_epoch,
        "nnbench epoch": nnbench_epoch,
    }
    for fn in fns.values():
        fn(Xd, yd, hidden, batch, "float32")  # warm-up
    for _ in range(args.repeats):
        for name, fn in fns.items():
            times[name].append(fn(Xd, yd, hidden, batch, "float32"))
    best = {k: min(v) for k, v in times.items()}
    lines = [
        "| hidden | batch | dtype | nnbench fit s | scikit-learn fit s | scikit-learn / nnbench "
        "| nnbench's epoch inside its fit s |",
        "|---|---|---|---|---|---|---|",
        f"| 25 | 100 | float32 | {best['nnbench fit']:.3f} | {best['scikit-learn fit']:.3f} | "
        f"{best['scikit-learn fit'] / best['nnbench fit']:.2f}x | {best['nnbench epoch']:.3f} |",
    ]
    for line in lines:
        print(line)
    print(
        "(fit: one epoch end to end, each estimator's default evaluation: nnbench records "
        "the running minibatch loss, scikit-learn its loss_curve_; best of "
        f"{args.repeats})\n"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="[25] batch 100, float32 only")
    parser.add_argument("--out", default="results/peers.md")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="BLAS and PyTorch threads for every contender (default: cores)",
    )
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(args.threads)  # numpy's BLAS, for nnbench and scikit-learn

    (X, y), _, _ = data.load_mnist()
    contenders: dict[str, Callable] = {"nnbench": nnbench_epoch}
    try:
        import sklearn  # noqa: F401

        contenders["scikit-learn"] = sklearn_epoch
    except ImportError:
        print("scikit-learn is not installed: skipped")
    torch_epoch = torch_epoch_factory(args.threads)
    if torch_epoch is None:
        print('PyTorch is not installed: skipped (pip install -e ".[torch]")')
    else:
        contenders["pytorch"] = torch_epoch

    fit_lines = fit_comparison(X, y, args) if "scikit-learn" in contenders else []
    configs = [((25,), 100)] if args.quick else CONFIGS
    dtypes = ["float32"] if args.quick else ["float32", "float64"]
    lines = []
    header = (
        "| hidden | batch | dtype | "
        + " | ".join(f"{c} s: best (median, worst)" for c in contenders)
        + " | "
        + " | ".join(f"{c} / nnbench" for c in contenders if c != "nnbench")
        + " | products s | nnbench / products | bound s | nnbench / bound |"
    )
    lines.append(header)
    lines.append("|" + "---|" * (3 + 2 * len(contenders) + 3))
    print(header)
    for dtype in dtypes:
        Xd = np.ascontiguousarray(X, dtype=dtype)
        yd = np.asarray(y, dtype=np.int64)
        for hidden, batch in configs:
            timed = dict(contenders, products=products_epoch)
            times: dict[str, list[float]] = {c: [] for c in timed}
            for fn in timed.values():  # warm-up: page in, spin up thread pools
                fn(Xd, yd, hidden, batch, dtype)
            for _ in range(args.repeats):
                for name, fn in timed.items():
                    times[name].append(fn(Xd, yd, hidden, batch, dtype))
            products = times.pop("products")
            best = {c: min(t) for c, t in times.items()}
            nn = times["nnbench"]

            def ratio(num: list[float], den: list[float]) -> str:
                # best over best; in brackets the median of the ratios within a
                # repetition (a slow spell hits both contenders of a repetition)
                within = statistics.median(a / b for a, b in zip(num, den))
                return f"{min(num) / min(den):.2f}x ({within:.2f}x)"

            rates = machine_rates(dtype)  # measured now, in this configuration's spell
            bound = bound_seconds(len(Xd), Xd.shape[1], hidden, dtype, rates)
            cells = [
                f"{min(t):.4f} ({statistics.median(t):.4f}, {max(t):.4f})" for t in times.values()
            ]
            cells += [ratio(t, nn) for c, t in times.items() if c != "nnbench"]
            cells += [
                f"{min(products):.4f}",
                ratio(nn, products),
                f"{bound:.4f}",
                f"{best['nnbench'] / bound:.2f}x",
            ]
            arch = "-".join(map(str, hidden))
            line = f"| {arch} | {batch} | {dtype} | " + " | ".join(cells) + " |"
            lines.append(line)
            print(line, flush=True)
    versions = [f"numpy {np.__version__}"]
    for mod in ("sklearn", "torch"):
        with contextlib.suppress(ImportError):
            versions.append(f"{mod} {__import__(mod).__version__}")
    limits.restore_original_limits()
    note = (
        f"\nOne epoch of SGD (learning rate {LEARNING_RATE}, no momentum) over 50,000 MNIST "
        f"rows; {args.repeats} alternating repetitions. Times: the best repetition, "
        "the median and the worst in brackets. Ratios: best over best, in brackets the median of "
        "the ratios within a repetition. On a shared machine other tenants only ever "
        "slow a run down, so the best repetition is the closest to the code's own "
        "speed; "
        f"{args.threads} BLAS/"
        f"PyTorch thread(s) for every contender. {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}; {', '.join(versions)}.\n"
        "Made by `python benchmarks/peers.py`.\n"
    )
    print(note)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# One epoch of SGD: nnbench, scikit-learn, PyTorch\n\n"
            + "\n".join(lines)
            + "\n"
            + note
            + ("\n## `fit`, end to end\n\n" + "\n".join(fit_lines) + "\n" if fit_lines else "")
        )


if __name__ == "__main__":
    main()
