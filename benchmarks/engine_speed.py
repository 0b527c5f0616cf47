"""This tree's training speed beside another commit's, alternating in one run.

Usage: python benchmarks/engine_speed.py --ref COMMIT [--rounds 6] [--epochs 1]
       [--only TEXT] [--out results/engine-speed.md]

What a change to the training engine must not slow down, measured on the
same machine in the same minutes: the commit ``--ref`` is checked out into a
temporary git worktree, and every round runs each workload once under each
tree (a fresh process each, with that tree first on ``PYTHONPATH``), the
order of the trees alternating from round to round, so a slow spell of the
machine hits both. The workloads:

- ``benchmarks/peers.py``'s lone runs: one epoch of plain SGD on MNIST's
  50,000 training rows (float32, sigmoid hidden layers, softmax output), for
  its networks and batch sizes up to 784-100-10, as ``peer_run`` builds them;
- ``benchmarks/tuning_throughput.py``'s two ways to run a tuning cell's
  trials: Adam trials alone (``--no-stack``, one run at a time) and the same
  trials as one stack of 12 learning rates.

Each is timed on its process's CPU clock (``time.process_time``; one BLAS
thread), which other tenants of the machine inflate less than wall time: a
lone run's ``train_cpu_seconds`` (evaluation excluded), the stack's whole
training. It prints, per workload, each tree's best round, and the median
over rounds of this tree's time divided by the reference's in the same round
(below 1: this tree is faster). Both trees must give the same numbers: the
final weights of every workload are compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, optimizer, hidden, batch, stacked trials or 0 for a run alone)
WORKLOADS = [
    ("gd 784-25-10, batch 50", "gd", [25], 50, 0),
    ("gd 784-25-10, batch 100", "gd", [25], 100, 0),
    ("gd 784-25-10, batch 500", "gd", [25], 500, 0),
    ("gd 784-100-10, batch 100", "gd", [100], 100, 0),
    ("adam 784-25-10, batch 50, alone", "adam", [25], 50, 0),
    ("adam 784-100-50-10, batch 50, alone", "adam", [100, 50], 50, 0),
    ("adam 784-25-10, batch 50, stack of 12", "adam", [25], 50, 12),
]

# Runs in a fresh process under one tree: prints {label: [cpu seconds, weights digest]}.
MEASURE = r"""
import hashlib, json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
from nnbench import data
from nnbench.build import build_run, run_values, train_together

threadpool_limits(1)
workloads, epochs = json.loads(sys.argv[1]), float(sys.argv[2])
(X, y), _, _ = data.load_mnist()
splits = {"train": (X.astype(np.float32), y)}
out = {}
for label, name, hidden, batch, k in workloads:
    values = run_values(hidden=hidden, output="softmax", dtype="float32", batch_size=batch,
                        seed=0, max_epochs=epochs, every=10**9, train_rows="running")
    rates = [1e-3] if not k else list(np.geomspace(1e-4, 1e-2, k))
    runs = [build_run(values, name, splits, 10,
                      {"learning_rate": 0.1 if name == "gd" else float(lr)}) for lr in rates]
    if k:
        t0 = time.process_time()
        results = train_together(runs)
        seconds = time.process_time() - t0
    else:
        results = [runs[0]()]
        seconds = results[0].rows[-1]["train_cpu_seconds"]
    digest = hashlib.sha256(b"".join(r.theta.tobytes() for r in results)).hexdigest()[:16]
    out[label] = [seconds, digest]
print(json.dumps(out))
"""


def measure(tree: Path, epochs: float) -> dict[str, list]:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(WORKLOADS), str(epochs)],
        env=env, cwd=tree, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the measurement failed under {tree}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", default="results/engine-speed.md")
    parser.add_argument("--only", help="only the workloads whose label contains this text")
    args = parser.parse_args()
    if args.only:
        WORKLOADS[:] = [w for w in WORKLOADS if args.only in w[0]]
    ref = subprocess.run(["git", "rev-parse", "--short", args.ref], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(ref_tree), ref],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            times: dict[str, dict[str, list]] = {"this": {}, "ref": {}}
            for r in range(args.rounds):
                order = [("this", ROOT), ("ref", ref_tree)]
                for which, tree in order if r % 2 == 0 else order[::-1]:
                    for label, (seconds, digest) in measure(tree, args.epochs).items():
                        times[which].setdefault(label, []).append((seconds, digest))
                print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(ref_tree)], cwd=ROOT,
                           check=False)  # fmt: skip
    lines = [
        "# The training engine's speed beside an earlier commit's",
        "",
        f"`python benchmarks/engine_speed.py --ref {ref} --rounds {args.rounds} "
        f"--epochs {args.epochs:g}`: this tree ({head}, with any uncommitted change) against "
        f"{ref}, alternating, {args.rounds} rounds; CPU seconds of training, one BLAS thread, "
        "MNIST (50,000 rows), float32.",
        "",
        "| workload | this tree, best | reference, best | this / reference, median of rounds "
        "| same weights |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, *_ in WORKLOADS:
        mine, theirs = times["this"][label], times["ref"][label]
        ratio = statistics.median(a[0] / b[0] for a, b in zip(mine, theirs))
        same = {d for _, d in mine} == {d for _, d in theirs} and len({d for _, d in mine}) == 1
        lines.append(
            f"| {label} | {min(s for s, _ in mine):.3f} | {min(s for s, _ in theirs):.3f} "
            f"| {ratio:.3f} | {'yes' if same else 'NO'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
