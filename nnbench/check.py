"""The regression check: final accuracy per configuration against a baseline.

A baseline is a JSON file (never a pickle) holding, per configuration
(optimizer setting, dataset, architecture, batch size, dtype), the final
validation accuracy over seeds: mean, standard deviation, number of seeds and
the values. ``check`` compares a results folder against it: a configuration
regresses when its mean dropped by more than the tolerance, either an
absolute ``tol`` or ``sigmas`` times the baseline's spread over seeds (with a
small floor, since a deterministic rerun has no spread at all).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nnbench import results
from nnbench.errors import NnbenchError
from nnbench.fileio import atomic_write
from nnbench.results import final_rows

FORMAT = "nnbench-baseline"
VERSION = 1
KEY = ["label", "dataset", "hidden", "batch_size", "dtype"]
METRIC = "val_accuracy"
# Floor of the spread-derived tolerance: BLAS builds differ in the last bits,
# which scipy's line searches can amplify to a few 1e-3 of accuracy.
MIN_TOL = 0.005


def _key_text(row: Any) -> str:
    return (
        f"{row['label']} | {row['dataset']} | hidden {row['hidden']} | "
        f"batch {row['batch_size']:g} | {row['dtype']}"
    )


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Final ``val_accuracy`` per configuration: mean, std, seeds, values.

    Runs that failed or diverged count with their final accuracy when they
    have one and are counted in ``n_failed`` otherwise.
    """
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame(columns=[*KEY, "mean", "std", "n_seeds", "n_failed", "values"])
    out = []
    for key, group in last.groupby(KEY, sort=True):
        values = group[METRIC].dropna()
        out.append(
            {
                **dict(zip(KEY, key)),
                "mean": float(values.mean()) if len(values) else float("nan"),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "n_seeds": len(values),
                "n_failed": int(group[METRIC].isna().sum()),
                "values": [float(v) for v in values],
            }
        )
    return pd.DataFrame(out)


def make_baseline(results_dir: str | Path) -> dict[str, Any]:
    frame = results.load(results_dir)
    if frame.empty:
        raise NnbenchError(f"{results_dir}: no runs; run the experiment before taking a baseline")
    table = summarise(frame)
    return {
        "format": FORMAT,
        "version": VERSION,
        "metric": METRIC,
        "source": str(results_dir),
        "configurations": [
            {
                **{k: row[k] for k in KEY},
                "mean": row["mean"],
                "std": row["std"],
                "n_seeds": int(row["n_seeds"]),
                "values": row["values"],
            }
            for _, row in table.iterrows()
        ],
    }


def write_baseline(results_dir: str | Path, path: str | Path) -> Path:
    baseline = make_baseline(results_dir)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(baseline, indent=2) + "\n")


def read_baseline(path: str | Path) -> pd.DataFrame:
    """A baseline file as a table; anything else is a clear error."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise NnbenchError(
            f"{path}: no such baseline file; make one with `nnbench baseline RESULTS_DIR -o FILE`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NnbenchError(f"{path}: not a baseline file (not JSON: {exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise NnbenchError(
            f'{path}: not an nnbench baseline (no "format": "{FORMAT}"); '
            "make one with `nnbench baseline RESULTS_DIR -o FILE`"
        )
    if raw.get("version") != VERSION:
        raise NnbenchError(
            f"{path}: baseline version {raw.get('version')!r} is not supported "
            f"(this nnbench reads version {VERSION})"
        )
    configs = raw.get("configurations")
    need = {*KEY, "mean", "std", "n_seeds"}
    if not isinstance(configs, list) or not all(
        isinstance(c, dict) and need <= set(c) for c in configs
    ):
        raise NnbenchError(
            f"{path}: malformed baseline: every configuration needs {', '.join(sorted(need))}"
        )
    table = pd.DataFrame(configs)
    for col in ("mean", "std", "batch_size"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    if table[["mean", "std", "batch_size"]].isna().any().any():
        raise NnbenchError(f"{path}: malformed baseline: non-numeric mean, std or batch_size")
    table["hidden"] = table["hidden"].astype(str)
    return table


@dataclass
class CheckResult:
    table: pd.DataFrame  # one row per configuration, both sides
    regressions: pd.DataFrame
    missing: pd.DataFrame  # in the baseline, not in the results
    new: pd.DataFrame  # in the results, not in the baseline

    @property
    def ok(self) -> bool:
        return self.regressions.empty and self.missing.empty


def check(
    results_dir: str | Path,
    baseline_path: str | Path,
    tol: float | None = None,
    sigmas: float = 3.0,
) -> CheckResult:
    """Compare final accuracies with a baseline.

    Parameters
    ----------
    tol : float, optional
        Absolute tolerance on the mean; when None, ``sigmas`` times the
        baseline's standard deviation over seeds, at least :data:`MIN_TOL`.
    """
    if tol is not None and not (isinstance(tol, (int, float)) and tol >= 0):
        raise NnbenchError(f"--tol must be a number >= 0; got {tol!r}")
    if not sigmas > 0:
        raise NnbenchError(f"--sigmas must be > 0; got {sigmas!r}")
    base = read_baseline(baseline_path)
    frame = results.load(results_dir)
    now = summarise(frame)
    now["hidden"] = now["hidden"].astype(str)
    merged = base.merge(now, on=KEY, how="outer", suffixes=("_base", "_now"), indicator=True)
    both = merged[merged["_merge"] == "both"].copy()
    if tol is not None:
        both["tolerance"] = float(tol)
    else:
        both["tolerance"] = (sigmas * both["std_base"]).clip(lower=MIN_TOL)
    both["drop"] = both["mean_base"] - both["mean_now"]
    # a configuration whose runs all failed has no mean: that is a regression too
    both["regressed"] = (both["drop"] > both["tolerance"]) | both["mean_now"].isna()
    return CheckResult(
        table=both,
        regressions=both[both["regressed"]],
        missing=merged[merged["_merge"] == "left_only"],
        new=merged[merged["_merge"] == "right_only"],
    )


def format_check(result: CheckResult) -> str:
    """A readable account: regressions first, then configurations on one side only."""
    lines = []
    if not result.regressions.empty:
        lines.append(
            f"{len(result.regressions)} configuration(s) regressed (final validation accuracy):"
        )
        lines.append(
            f"  {'configuration':<60} {'baseline':>9} {'now':>9} {'drop':>8} {'allowed':>8}"
        )
        for _, row in result.regressions.iterrows():
            now = "failed" if math.isnan(row["mean_now"]) else f"{row['mean_now']:.4f}"
            drop = "" if math.isnan(row["drop"]) else f"{row['drop']:.4f}"
            lines.append(
                f"  {_key_text(row):<60} {row['mean_base']:>9.4f} {now:>9} "
                f"{drop:>8} {row['tolerance']:>8.4f}"
            )
    if not result.missing.empty:
        lines.append(
            f"{len(result.missing)} configuration(s) of the baseline are missing from the results:"
        )
        lines.extend(f"  {_key_text(row)}" for _, row in result.missing.iterrows())
    if not result.new.empty:
        lines.append(
            f"{len(result.new)} configuration(s) are new (not in the baseline, not checked):"
        )
        lines.extend(f"  {_key_text(row)}" for _, row in result.new.iterrows())
    n = len(result.table)
    verdict = "OK" if result.ok else "FAILED"
    lines.append(
        f"{verdict}: {n - len(result.regressions)} of {n} configuration(s) within tolerance"
    )
    return "\n".join(lines)
