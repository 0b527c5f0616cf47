"""The fast tier's cost: wall seconds and CPU seconds of `python -m pytest`.

Usage: python benchmarks/test_tier.py [--args "-m slow"]

Runs the README's test command (the fast tier) in a child process and
measures its wall time and the CPU time of the machine over the same span
(/proc/stat: every process the tests start counts, the run processes of a
fork server included, which the child's own rusage may miss). Run it on an
otherwise idle machine; the 30 slowest tests are listed beside.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time


def busy_seconds() -> float:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--args", default="", help="more pytest arguments")
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=30",
           *shlex.split(args.args)]  # fmt: skip
    cpu0, t0 = busy_seconds(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, busy_seconds() - cpu0
    tail = done.stdout.strip().splitlines()
    durations = [line for line in tail if " call " in line or " setup " in line]
    print("\n".join(durations))
    print(tail[-1] if tail else done.stderr[-500:])
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s on {os.cpu_count()} cores (exit {done.returncode})")


if __name__ == "__main__":
    main()
