"""The two clocks of a run, alone and beside a busy process.

Usage: python benchmarks/clocks.py [--repeats 5] [--out results/clocks.md]

Each repetition trains the same runs twice in a process of its own, pinned
to one core with one BLAS thread: once alone, once beside a process that
keeps that core busy (what another tenant, or another run of `-j 2` on a
loaded machine, does). A run records its training time on both clocks:
`train_seconds` (wall, what a user waits) and `train_cpu_seconds` (the CPU
time of its own process over the same spans). The wall clock doubles beside
the busy process; the CPU clock should not move beyond a few percent. The
table gives, per run, the median over repetitions of each clock alone and
beside the busy process, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = {  # name: (optimizer, options, settings)
    "gd, [25], batch 100": ("gd", {}, {"hidden": (25,), "batch_size": 100}),
    "adam, [128], batch 50": ("adam", {}, {"hidden": (128,), "batch_size": 50}),
    "cg, [25], batch 200": ("cg", {"mb_maxiter": 10}, {"hidden": (25,), "batch_size": 200}),
}
CHILD = """
import json, sys
from threadpoolctl import threadpool_limits
from nnbench.build import build_run, run_values
from nnbench.data import load_dataset
optimizer, options, settings, dataset, epochs = json.loads(sys.argv[1])
ds = load_dataset(dataset, mmap=True)
splits = {"train": ds.train, "valid": ds.valid, "test": ds.test}
with threadpool_limits(1):
    values = run_values(dtype="float32", max_epochs=epochs, points=4, **settings)
    result = build_run(values, optimizer, splits, ds.n_classes, options)()
last = result.rows[-1]
print(json.dumps([last["train_seconds"], last["train_cpu_seconds"]]))
"""


def one(name: str, dataset: str, epochs: float) -> tuple[float, float]:
    optimizer, options, settings = RUNS[name]
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    arg = json.dumps([optimizer, options, settings, dataset, epochs])
    # pinned to core 0, as the busy process is
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", CHILD, arg],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, cpu


def busy() -> subprocess.Popen:
    return subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", "while True: pass"],
    )


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", default="results/clocks.md")
    args = parser.parse_args()
    rows = []
    for name in RUNS:
        alone: list[tuple[float, float]] = []
        shared: list[tuple[float, float]] = []
        for _ in range(args.repeats):  # alternating, so that drifts hit both alike
            alone.append(one(name, args.dataset, args.epochs))
            proc = busy()
            time.sleep(0.2)
            try:
                shared.append(one(name, args.dataset, args.epochs))
            finally:
                proc.kill()
                proc.wait()
        wall_a, wall_s = median([w for w, _ in alone]), median([w for w, _ in shared])
        cpu_a, cpu_s = median([c for _, c in alone]), median([c for _, c in shared])
        rows.append(
            f"| {name} | {wall_a:.3f} | {wall_s:.3f} | {wall_s / wall_a:.2f}x | "
            f"{cpu_a:.3f} | {cpu_s:.3f} | {cpu_s / cpu_a:.2f}x |"
        )
        print(rows[-1], flush=True)
    text = (
        "# The two clocks of a run, alone and beside a busy process\n\n"
        "| run | wall s alone | wall s beside | wall ratio | CPU s alone | CPU s beside "
        "| CPU ratio |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nMedians of {args.repeats} alternating repetitions; {args.dataset}, float32, "
        f"{args.epochs:g} epoch(s), one BLAS thread, the run and the busy process pinned to "
        "one core. Made by `python benchmarks/clocks.py` "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores).\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
