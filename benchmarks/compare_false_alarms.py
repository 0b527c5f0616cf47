"""nnbench compare's false alarms: harmless variants of the CI grids, and a real regression.

Usage: python benchmarks/compare_false_alarms.py [--out results/compare-false-alarms.md]

The grids of experiments/ci/ (the tuning study aside: its finals pair by
choice) are run once as the reference, then again under each harmless
variant: another BLAS kernel family of this CPU (OPENBLAS_CORETYPE: another
CPU's rounding), 2 BLAS threads, -j 1, and the loky and Dask backends. Each
variant is compared with the reference by `nnbench compare` with its
defaults (validation accuracy decides, margin 0.002, Holm's correction at
0.05): every "better" or "worse" verdict there is a false alarm, and a
non-zero exit is a false failure. The reported metrics (test accuracy,
training cost) are counted too. Then a real regression, GD's step halved,
planted in a copy of the package: compare must call GD worse.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRIDS = [p for p in sorted((ROOT / "experiments" / "ci").glob("*.toml")) if p.stem != "tune"]
BUG = (  # GD's step halved
    "optimizers/first_order.py",
    'grads *= column(state["lr"], grads)\n        thetas -= grads\n        return losses\n\n\nclass Momentum',  # noqa: E501
    'grads *= column(state["lr"], grads) * 0.5\n        thetas -= grads\n        return losses\n\n\nclass Momentum',  # noqa: E501
)


def variants() -> list[tuple[str, list[str], dict[str, str]]]:
    from nnbench.calibration import ENV_KEY, kernel_families

    library, current, others = kernel_families()
    key = ENV_KEY.get(library or "")
    out = [(f"{key}={f} (this CPU runs {current})", [], {key: f}) for f in others] if key else []
    return [
        *out,
        ("--threads 2", ["-j", "1", "--threads", "2"], {}),
        ("-j 1", ["-j", "1"], {}),
        ("--backend loky", ["--backend", "loky"], {}),
        ("--backend dask (a local cluster)", ["--backend", "dask"], {}),
    ]


def run_grids(out: Path, flags: list[str], env: dict[str, str], site: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ, **env)
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join([str(site), full_env.get("PYTHONPATH", "")])
    for grid in GRIDS:
        cmd = [sys.executable, "-m", "nnbench.cli", "run", str(grid), "-j", "2", "--quiet",
               "--out", str(out / grid.stem), *flags]  # fmt: skip
        # from the results' folder: `python -m` puts the working folder first on the path,
        # and this repository's nnbench would shadow the planted copy
        subprocess.run(cmd, env=full_env, check=True, capture_output=True, cwd=out.parent)


def verdicts(reference: Path, other: Path) -> tuple[dict[str, int], dict[str, int], int, list[str]]:
    """Deciding and reported verdict counts over every grid, the exit statuses,
    and the configurations called better or worse."""
    from nnbench import compare

    deciding: dict[str, int] = {}
    reported: dict[str, int] = {}
    worst, named = 0, []
    for grid in GRIDS:
        result = compare.compare(reference / grid.stem, other / grid.stem)
        table = result.table[result.table["metric"] != "ended normally"]
        for verdict, decides in zip(table["verdict"], table["decides"]):
            counts = deciding if decides else reported
            counts[verdict] = counts.get(verdict, 0) + 1
        moved = table[table["decides"] & table["verdict"].isin(["better", "worse"])]
        for name, verdict in zip(moved["configuration"], moved["verdict"]):
            named.append(f"{name.replace(' | ', ', ')}: {verdict}")  # no | in a table cell
        worst = max(worst, compare.exit_code(result, "worse"))
    return deciding, reported, worst, named


def fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/compare-false-alarms.md")
    args = parser.parse_args()
    lines = [
        "| variant | deciding: validation accuracy | reported: test accuracy, training cost "
        "| exit | better or worse |",
        "|---|---|---|---|---|",
    ]
    t0 = time.perf_counter()
    alarms = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_grids(tmp / "reference", [], {})
        for name, flags, env in variants():
            run_grids(tmp / name, flags, env)
            deciding, reported, code, named = verdicts(tmp / "reference", tmp / name)
            alarms += len(named)
            lines.append(f"| {name} | {fmt(deciding)} | {fmt(reported)} | {code} | "
                         f"{'; '.join(named) or 'none'} |")  # fmt: skip
            print(lines[-1], flush=True)
        site = tmp / "site"
        shutil.copytree(ROOT / "nnbench", site / "nnbench")
        path = site / "nnbench" / BUG[0]
        source = path.read_text()
        if source.count(BUG[1]) != 1:  # a stale patch would plant nothing and prove nothing
            raise SystemExit(f"the planted bug no longer matches {BUG[0]}: update BUG")
        path.write_text(source.replace(BUG[1], BUG[2]))
        run_grids(tmp / "bug", [], {}, site)
        deciding, reported, code, named = verdicts(tmp / "reference", tmp / "bug")
        bug_line = (f"| planted: GD's step halved | {fmt(deciding)} | {fmt(reported)} | {code} | "
                    f"{'; '.join(named) or 'none'} |")  # fmt: skip
        print(bug_line, flush=True)
    total = sum(1 for _ in GRIDS)
    text = (
        "# nnbench compare against harmless variants and a real regression\n\n"
        f"{alarms} better-or-worse verdicts over {len(lines) - 2} harmless variants of the "
        f"{total} CI grids (experiments/ci/, the tuning study aside); the planted "
        "regression's verdicts in the last row.\n\n"
        + "\n".join([*lines, bug_line])
        + "\n\nEach row: the grids run again that way, then `nnbench compare REFERENCE "
        "VARIANT` per grid with its defaults (validation accuracy decides, margin 0.002, "
        "Holm's correction at alpha 0.05; the other metrics reported). Made by `python "
        f"benchmarks/compare_false_alarms.py` in {time.perf_counter() - t0:.0f} s "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores).\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
