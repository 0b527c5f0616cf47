"""How far the times of an identical rerun of the blog grid move between reruns.

Usage: python benchmarks/timing_reruns.py [--reruns 6] [--pause 20] [--out results/timing-reruns.md]

`nnbench run experiments/blog.toml -j 2` is run K times into fresh folders,
with a pause between reruns so that they land at different times on the
machine (shared with whatever else runs on it, as a user's is). The
accuracies are bit-identical across reruns (checked here); only the times
move. Per configuration, the mean over seeds is taken of each clock: the
training CPU seconds (`train_cpu_seconds`), the training wall seconds
(`train_seconds`), and the CPU seconds to reach validation accuracy 0.85
(`train_cpu_seconds_to_target`, over the seeds that reach it), with the
gradient evaluations to reach it as a deterministic contrast. For every
ordered pair of reruns (i, j) and every configuration the ratio
mean_j / mean_i is formed: the table gives, per clock, the median, 90th
percentile and maximum of |ratio - 1| over all pairs and configurations, the
maximum per configuration, and the smallest round margin no pair exceeded --
what `nnbench compare`'s default margin on a time metric (a percentage of
A's mean) must be above for identical reruns not to be told apart. For
contrast, the spread within one rerun across seeds: max/min - 1 of the
seconds per gradient evaluation of a configuration's seeds, the median over
configurations and reruns.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "experiments" / "blog.toml"
TARGET = 0.85
# clock column: what it is, as the table names it
CLOCKS = {
    "train_cpu_seconds": "training CPU seconds",
    "train_seconds": "training wall seconds",
    "train_cpu_seconds_to_target": f"CPU seconds to validation accuracy {TARGET}",
    "grad_evals_to_target": f"gradient evaluations to validation accuracy {TARGET}",
}
ROUND_MARGINS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 0.75, 1.00)


def run_grid(out: Path) -> float:
    """One rerun of the grid into ``out``; its wall seconds."""
    cmd = [sys.executable, "-m", "nnbench.cli", "run", str(GRID), "-j", "2", "--quiet",
           "--out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - t0


def per_run(folder: Path) -> pd.DataFrame:
    """One row per run: configuration, seed, final accuracies, clocks, and the
    clocks and gradient evaluations to the target."""
    from nnbench.report.tables import with_time_to_target
    from nnbench.results import final_rows, load
    from nnbench.status import Status

    frame = load(folder)
    last = final_rows(frame)
    bad = last[[not Status(s).is_ok for s in last["status"].astype(str)]]
    if len(bad):
        why = sorted(set(zip(bad["status"].astype(str), bad["message"].astype(str))))
        raise SystemExit(f"{folder}: {len(bad)} runs did not end normally: {why}")
    ttt = with_time_to_target(frame, TARGET)
    keep = ["run_id", "config_id", "name", "seed", "val_accuracy", "test_accuracy",
            "grad_evals", "train_seconds", "train_cpu_seconds"]  # fmt: skip
    runs = last[keep].merge(ttt, on="run_id", how="left")
    for column in ("config_id", "name"):
        runs[column] = runs[column].astype(str)
    return runs


def config_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration (rows named), the mean over seeds of each clock (NaN:
    seeds that never reached the target are left out)."""
    means = runs.groupby(["config_id", "name"])[list(CLOCKS)].mean()
    return means.reset_index("config_id", drop=True)


def pair_deviations(means: list[pd.DataFrame]) -> pd.DataFrame:
    """|mean_j / mean_i - 1| per ordered pair (i, j), configuration and clock, long."""
    rows = []
    for i, a in enumerate(means):
        for j, b in enumerate(means):
            if i == j:
                continue
            ratio = b / a
            for clock in CLOCKS:
                for name, r in ratio[clock].items():
                    if np.isfinite(r):
                        rows.append({"clock": clock, "name": name, "i": i, "j": j,
                                     "dev": abs(r - 1.0)})  # fmt: skip
    return pd.DataFrame(rows)


def seed_spread(runs: list[pd.DataFrame], clock: str) -> float:
    """max/min - 1 over a configuration's seeds of the seconds per gradient
    evaluation, the median over configurations and reruns."""
    spreads = []
    for frame in runs:
        per_eval = frame[clock] / frame["grad_evals"]
        for _, values in per_eval.groupby(frame["config_id"]):
            spreads.append(float(values.max() / values.min() - 1.0))
    return float(np.median(spreads))


def round_margin(worst: float) -> str:
    if worst == 0.0:
        return "0% (identical)"
    for margin in ROUND_MARGINS:
        if worst <= margin:
            return f"{margin:.0%}"
    return f"none up to {ROUND_MARGINS[-1]:.0%}"


def pct(value: float) -> str:
    return f"{value:.1%}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=6, help="reruns of the grid (>= 2)")
    parser.add_argument("--pause", type=float, default=20.0, help="seconds between reruns")
    parser.add_argument("--out", default="results/timing-reruns.md")
    args = parser.parse_args()
    if args.reruns < 2:
        parser.error("--reruns must be at least 2: the numbers are between reruns")
    command = "python benchmarks/timing_reruns.py" + "".join(
        f" {flag} {value:g}" if isinstance(value, float) else f" {flag} {value}"
        for flag, value, default in (
            ("--reruns", args.reruns, 6),
            ("--pause", args.pause, 20.0),
            ("--out", args.out, "results/timing-reruns.md"),
        )
        if value != default
    )
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    t0 = time.perf_counter()
    runs: list[pd.DataFrame] = []
    log: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.reruns):
            if k:
                time.sleep(args.pause)
            load1 = os.getloadavg()[0]
            at = time.strftime("%H:%M:%S")
            seconds = run_grid(Path(tmp) / f"rerun-{k}")
            runs.append(per_run(Path(tmp) / f"rerun-{k}"))
            log.append(f"rerun {k}: started {at}, load average {load1:.2f}, took {seconds:.0f} s")
            print(log[-1], flush=True)
    total = time.perf_counter() - t0
    nproc = len(os.sched_getaffinity(0))

    # the accuracies and gradient evaluations must not move: only times may
    fixed = ["run_id", "val_accuracy", "test_accuracy", "grad_evals", "grad_evals_to_target"]
    first = runs[0].sort_values("run_id")[fixed].reset_index(drop=True)
    same = all(
        r.sort_values("run_id")[fixed].reset_index(drop=True).equals(first) for r in runs[1:]
    )
    means = [config_means(r) for r in runs]
    devs = pair_deviations(means)
    names = sorted(means[0].index)
    typical = pd.concat(means).groupby(level=0).mean()

    head = [
        "| clock | configurations | pairs x configurations | median \\|r-1\\| | 90th pct \\|r-1\\| "
        "| max \\|r-1\\| | no pair beyond | seed spread within a rerun |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst: dict[str, float] = {}
    for clock, label in CLOCKS.items():
        d = devs[devs["clock"] == clock]["dev"].to_numpy()
        worst[clock] = float(d.max())
        n_configs = devs[devs["clock"] == clock]["name"].nunique()
        within = (
            pct(seed_spread(runs, clock))
            if clock in ("train_cpu_seconds", "train_seconds")
            else "(n/a)"
        )
        head.append(
            f"| {label} (`{clock}`) | {n_configs} | {len(d)} | {pct(float(np.median(d)))} "
            f"| {pct(float(np.percentile(d, 90)))} | {pct(worst[clock])} "
            f"| {round_margin(worst[clock])} | {within} |"
        )
    per_config = [
        "| configuration | " + " | ".join(f"`{c}`: mean; max \\|r-1\\|" for c in CLOCKS) + " |",
        "|---|" + "---|" * len(CLOCKS),
    ]
    for name in names:
        cells = []
        for clock in CLOCKS:
            d = devs[(devs["clock"] == clock) & (devs["name"] == name)]["dev"]
            mean = typical.loc[name, clock]
            shown = f"{mean:.0f}" if clock == "grad_evals_to_target" else f"{mean:.3f} s"
            cells.append("not reached" if d.empty else f"{shown}; {pct(float(d.max()))}")
        per_config.append(f"| {name} | " + " | ".join(cells) + " |")

    cpu_t = worst["train_cpu_seconds_to_target"]
    cpu_t_median = float(np.median(devs[devs["clock"] == "train_cpu_seconds_to_target"]["dev"]))
    paragraph = (
        f"What this means for a margin on time: over {args.reruns * (args.reruns - 1)} ordered "
        f"pairs of identical reruns, the mean CPU seconds to validation accuracy {TARGET} of a "
        f"configuration moved by up to {pct(cpu_t)} between reruns (median "
        f"{pct(cpu_t_median)}), "
        f"the training CPU seconds by up to {pct(worst['train_cpu_seconds'])}, and the wall "
        f"seconds by up to {pct(worst['train_seconds'])}. The smallest round margin no "
        f"identical pair exceeded is {round_margin(cpu_t)} for "
        f"`train_cpu_seconds_to_target` and {round_margin(worst['train_cpu_seconds'])} for "
        f"`train_cpu_seconds`: a default margin on a time metric below that would let "
        "`nnbench compare` call an identical rerun faster or slower on noise alone. That is "
        f"a floor from {args.reruns} reruns on a shared machine, not a bound: a busier "
        "machine, or more reruns, can move times further. These times are short (a run "
        f"trains for {typical['train_cpu_seconds'].min():.3f} to "
        f"{typical['train_cpu_seconds'].max():.2f} CPU seconds on average, by configuration), "
        "so timer and scheduler jitter weighs more than it would on longer runs. The "
        "gradient evaluations to the target moved by "
        f"{pct(worst['grad_evals_to_target'])}"
        + (
            ": they are counts, the same in every rerun, and need no margin for rerun noise."
            if same and worst["grad_evals_to_target"] == 0.0
            else ": they should not move at all; that they did is a bug to look into."
        )
    )
    text = (
        "# Timing noise between identical reruns of the blog grid\n\n"
        f"`nnbench run experiments/blog.toml -j 2` run {args.reruns} times, {args.pause:g} s "
        f"apart; per configuration the mean over its seeds of each clock, and for every "
        f"ordered pair of reruns (i, j) r = mean_j / mean_i. Accuracies, gradient "
        f"evaluations and evaluations to the target identical in every rerun: "
        f"{'yes' if same else 'NO'}.\n\n" + "\n".join(head) + "\n\n" + paragraph + "\n\n"
        "Per configuration: the mean over seeds and reruns, and the largest |r-1| over "
        "ordered pairs of reruns (configurations that never reach the target have no "
        "time to it; a configuration's time to it is the mean over the seeds that reach it, "
        "the same seeds in every rerun).\n\n"
        + "\n".join(per_config)
        + "\n\n'Seed spread within a rerun': per configuration and rerun, max/min - 1 over "
        "its seeds of the clock's seconds per gradient evaluation, the median over "
        "configurations and reruns: how much runs of one rerun differ in speed, for "
        "contrast with how much a configuration's mean moves between reruns.\n\n"
        "The machine was shared with other work while this ran (as a user's is): the "
        "numbers include that.\n\n"
        + "\n".join(f"- {line}" for line in log)
        + f"\n\nMade by `{command}` on {started} in {total:.0f} s; {nproc} cores "
        f"(nproc), {cpu_model()}, Python {sys.version.split()[0]}.\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
