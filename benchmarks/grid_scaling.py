"""Wall time and peak memory of an 8-run MNIST grid with -j 1 and -j 2.

Usage: python benchmarks/grid_scaling.py [--repeats 1]

Runs the same grid (2 architectures x 2 optimizers x 2 seeds, three epochs
each, float32) through `nnbench run` in a fresh results folder with 1 and
with 2 jobs, sampling the proportional set size (PSS) of the runner and all
its worker processes every 100 ms in a separate, untimed run. PSS counts a shared page once across
processes, so a dataset memory-mapped by both workers counts once, as it
costs the machine. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = """
name = "scaling"
[data]
dataset = "mnist"
dtype = "float32"
[model]
hidden = [[100], [200]]
[grid]
batch_size = [50]
seeds = [1, 2]
[budget]
max_epochs = 3
[eval]
every = "epoch"
[[optimizer]]
name = "gd"
[[optimizer]]
name = "adam"
"""


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(jobs: int, threads: int, sample: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "grid.toml"
        exp.write_text(GRID)
        cmd = [
            sys.executable,
            "-m",
            "nnbench.cli",
            "run",
            str(exp),
            "--out",
            str(Path(tmp) / "out"),
            "-j",
            str(jobs),
            "--threads",
            str(threads),
            "--quiet",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak, pids, n = 0, [proc.pid], 0
        while sample and proc.poll() is None:
            if n % 5 == 0:  # walking /proc costs CPU the runs need: not every sample
                pids = descendants(proc.pid)
            peak = max(peak, sum(pss_kib(p) for p in pids))
            n += 1
            time.sleep(0.1)
        proc.wait()
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"nnbench run failed with exit code {proc.returncode}")
    return seconds, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    # Fetch and share MNIST first, so no configuration pays for it.
    measure(1, 1, sample=False)
    print(f"8-run MNIST grid, {os.cpu_count()} cores; best of {args.repeats}")
    print(f"{'jobs':>4} {'threads':>7} {'wall s':>8} {'peak PSS MiB':>13}")
    rows = {}
    for jobs, threads in ((1, 1), (1, 2), (2, 1)):
        # Timed without sampling: reading a process's memory map stalls it.
        wall = min(measure(jobs, threads, sample=False)[0] for _ in range(args.repeats))
        peak = measure(jobs, threads, sample=True)[1]
        rows[(jobs, threads)] = (wall, peak)
        print(f"{jobs:>4} {threads:>7} {wall:>8.2f} {peak:>13.0f}")
    (w1, m1), (w2, m2) = rows[(1, 1)], rows[(2, 1)]
    print(
        f"-j 2 speed-up over -j 1 (1 thread per run): {w1 / w2:.2f}x; "
        f"over -j 1 --threads 2: {rows[(1, 2)][0] / w2:.2f}x"
    )
    print(f"-j 2 peak memory: {m2:.0f} MiB vs {m1:.0f} MiB with -j 1 ({m2 / m1:.2f}x)")


if __name__ == "__main__":
    main()
