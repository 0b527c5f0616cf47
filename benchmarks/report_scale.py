"""The report's time and peak memory against the number of runs.

Usage: python benchmarks/report_scale.py [--runs 1000,10000] [--out results/report-scale.md]

Writes N small runs (3 optimizers x 2 cells, the seeds making up the rest;
20 evaluation rows each) into a folder, then times `nnbench report` of it in
a child process and reads that process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_runs(folder: Path, n: int) -> None:
    from nnbench import experiment, results
    from nnbench.train import METRICS

    exp = experiment.validate(
        {"name": "scale", "data": {"dataset": "digits"}, "budget": {"max_iter": 100},
         "eval": {"points": 20}, "optimizer": [{"name": "gd"}]}
    )  # fmt: skip
    rng = np.random.default_rng(0)
    cells = [((32,), 32), ((32, 16), 64)]
    optimizers = ["gd", "adam", "rmsprop"]
    per = len(cells) * len(optimizers)
    for i in range(n):
        opt = optimizers[i % 3]
        hidden, batch = cells[(i // 3) % 2]
        spec = exp.spec(opt, {}, hidden=hidden, batch_size=batch, seed=i // per)
        acc = np.minimum(0.99, np.linspace(0.1, 0.9, 21) + rng.normal(0, 0.02, 21))
        rows = [
            dict.fromkeys(METRICS, 0.0)
            | {"iteration": 5 * k, "epoch": 0.15 * k, "grad_evals": 5 * k, "val_accuracy": a,
               "train_cost": 2 - a, "train_seconds": 0.01 * k, "train_cpu_seconds": 0.01 * k}
            for k, a in enumerate(acc)
        ]  # fmt: skip
        results.write_run(folder, spec, rows, "completed", "", {"n_jobs": 1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1000,10000")
    parser.add_argument("--out", default="results/report-scale.md")
    args = parser.parse_args()
    lines = ["| runs | report seconds | peak memory (MiB) | per run |", "|---|---|---|---|"]
    for n in (int(x) for x in args.runs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "scale"
            write_runs(folder, n)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "nnbench.cli", "report", str(folder), "--out",
                 str(Path(tmp) / "report")],
                check=True, capture_output=True,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child
            if peak <= before:
                peak = before
        lines.append(f"| {n:,} | {seconds:.1f} | {peak / 1024:.0f} | {seconds / n * 1000:.1f} ms |")
        print(lines[-1], flush=True)
    text = (
        "# The report's time and peak memory against the number of runs\n\n"
        + "\n".join(lines)
        + "\n\nEach: N runs of 21 evaluation rows (3 optimizers x 2 cells, seeds for the rest), "
        "then `nnbench report` in a child process; peak memory is its maximum resident set. "
        f"Made by `python benchmarks/report_scale.py` (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores).\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
