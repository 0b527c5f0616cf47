"""``nnbench export RESULTS``: every table the report shows, as data.

Each table is one file per format, named for the table, in the output folder
(``RESULTS/export`` by default):

- ``summary``: per configuration over its seeds, the final accuracies' means
  with their 95% t intervals, the clocks, and with a target the time to it;
- ``pairwise`` and ``pairwise-cells``: which optimizer ends higher, each
  pair's paired difference with its interval, seeds (and cells) each way, the
  test that decided, p, Holm's p and the verdict;
- ``algoperf-scores``: AlgoPerf's score with its bootstrap range and how often
  each optimizer's score beats another's; ``time-to-target``: the times the
  profile is made of (``inf``: never, including beyond 4x the fastest);
- ``iqm`` and ``probability-of-improvement``: rliable's aggregates;
- a tuned study's ``chosen-settings``, ``trials`` (every trial with its
  settings) and ``tuning-curve``;
- ``runs``: one row per run, its settings and final metrics; ``evaluations``:
  every evaluation point of every run (CSV and JSON only: thousands of rows
  are no LaTeX table).

Formats: CSV (the default), JSON (records) and LaTeX (``booktabs``). The
``algoperf`` folder lays the study out as MLCommons AlgoPerf's
``scoring/scoring_utils.get_experiment_df`` reads an experiment:
``algoperf/<submission>/<study>/<workload>/trial_<k>/eval_measurements.csv``
(``global_step`` the gradient evaluations, ``accumulated_submission_time``
the report's clock, ``validation/accuracy``), with ``workload_targets.json``
naming each workload's metric and target, which AlgoPerf otherwise takes from
its own workload registry.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnbench import results, tune
from nnbench.errors import NnbenchError
from nnbench.fileio import atomic_write
from nnbench.report import tables, workload_targets

FORMATS = ("csv", "json", "latex")
SUFFIX = {"csv": ".csv", "json": ".json", "latex": ".tex"}
LONG = ("runs", "evaluations")  # no LaTeX for these


def write_text(path: Path, text: str) -> Path:
    """``text`` to ``path`` (its folders made), atomically; one line when the disk refuses."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, text)
    except OSError as exc:
        raise NnbenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def _load(results_dir: Path) -> tuple[pd.DataFrame, list[dict] | None, pd.DataFrame]:
    """A folder's runs, its tuning choice and the runs that stand for it."""
    frame = results.load(results_dir)
    if frame.empty:
        raise NnbenchError(f"{results_dir}: no runs to export; run an experiment first")
    chosen = tune.read_choices(results_dir)
    return frame, chosen, tune.reported(frame, chosen)


def report_tables(results_dir: str | Path, target: tables.Target = None) -> dict[str, pd.DataFrame]:
    """Every table of the report of ``results_dir`` (as :func:`nnbench.report.build`
    computes it), plus every run and every evaluation, by file name."""
    results_dir = Path(results_dir)
    if target is None:
        target = workload_targets(results_dir)
    return _tables(*_load(results_dir), target)


def _tables(
    frame: pd.DataFrame, chosen: list[dict] | None, shown: pd.DataFrame, target: tables.Target
) -> dict[str, pd.DataFrame]:
    time_col = tables.time_axis(frame)
    out: dict[str, pd.DataFrame] = {}
    if not shown.empty:
        out["summary"] = tables.summary_table(shown, target, time_col)
        study, per_cell, _ = tables.pairwise_verdicts(shown)
        out["pairwise"] = study
        out["pairwise-cells"] = _split_cell(per_cell)
        out.update(_profile_tables(shown, target, time_col))
        iqm, pi = tables.aggregates(shown)
        out["iqm"], out["probability-of-improvement"] = iqm, pi
    if chosen:
        out["chosen-settings"] = tables.chosen_settings(shown, chosen)
        out["trials"] = tables.searched_values(frame)
        out["tuning-curve"] = tables.tuning_curve(frame)
    out["runs"] = results.final_rows(frame)
    out["evaluations"] = frame
    return {name: table for name, table in out.items() if not table.empty}


def _split_cell(table: pd.DataFrame) -> pd.DataFrame:
    """A ``cell`` column of (workload, hidden, batch) as three columns."""
    if table.empty or "cell" not in table:
        return table
    cells = table.pop("cell")
    for i, column in enumerate(tables.CELL):
        table.insert(2 + i, column, [c[i] for c in cells])
    return table


def _profile_tables(shown: pd.DataFrame, target: tables.Target, time_col: str) -> dict:
    evaluated = shown[shown["iteration"].notna()]
    if evaluated.empty:
        return {}
    profile = tables.performance_profile(evaluated, target, time_col)
    if profile.times.empty:
        return {}
    scores = tables.score_uncertainty(profile).rename_axis("optimizer").reset_index()
    times = profile.times.mask(np.isinf(profile.ratios), math.inf)  # beyond 4x: never
    times.columns = [tables.cell_text(cell) for cell in times.columns]
    times = times.rename_axis("optimizer").reset_index()
    return {"algoperf-scores": scores, "time-to-target": times}


def export(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    formats: tuple[str, ...] = ("csv",),
    target: tables.Target = None,
) -> list[Path]:
    """Write every table of ``results_dir`` in ``formats`` and the AlgoPerf layout;
    return the files written."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise NnbenchError(
            f"--format takes {', '.join(FORMATS)} (comma-separated); got {','.join(formats)}"
        )
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir / "export"
    frame, chosen, shown = _load(results_dir)
    if target is None:
        target = workload_targets(results_dir)
    written = []
    for name, table in _tables(frame, chosen, shown, target).items():
        plain = _plain(table)
        for fmt in formats:
            if fmt == "latex" and name in LONG:
                continue
            path = out / f"{name}{SUFFIX[fmt]}"
            write_text(path, _render(plain, fmt, name))
            written.append(path)
    written += algoperf_layout(frame, shown, out / "algoperf", target)
    return written


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """Cells a file can hold: categories as text, tuples joined, the index dropped."""
    plain = table.reset_index(drop=True).copy()
    for col in plain.columns:
        if isinstance(plain[col].dtype, pd.CategoricalDtype):
            plain[col] = plain[col].astype(object)
        if plain[col].dtype == object:
            plain[col] = ["-".join(map(str, v)) if isinstance(v, tuple) else v for v in plain[col]]
    return plain


def _render(table: pd.DataFrame, fmt: str, name: str) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        records = table.to_dict(orient="records")
        return json.dumps([{k: _json_value(v) for k, v in r.items()} for r in records],
                          indent=1) + "\n"  # fmt: skip
    return latex_table(table, name)


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: null, and "inf" for never."""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                 "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "\\": r"\textbackslash{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(table: pd.DataFrame, caption: str) -> str:
    """A ``booktabs`` tabular of ``table``: numbers right-aligned at 4 significant
    digits, text escaped; NaN empty."""
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and table[c].dtype != bool
               for c in table.columns]  # fmt: skip
    spec = "".join("r" if n else "l" for n in numeric)

    def cell(value: Any, is_number: bool) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if is_number and isinstance(value, (float, np.floating)):
            return r"$\infty$" if math.isinf(value) else f"{value:.4g}"
        return latex_escape(value)

    lines = [
        f"% {latex_escape(caption)}: written by nnbench export",
        f"\\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(cell(v, n) for v, n in zip(row, numeric)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# -- AlgoPerf's layout -------------------------------------------------------------------------


def algoperf_layout(
    frame: pd.DataFrame, shown: pd.DataFrame, out: Path, target: tables.Target = None
) -> list[Path]:
    """The runs the report's profile is made of, laid out as AlgoPerf's scoring reads
    an experiment folder: one folder per submission (optimizer), then per study
    (seed), workload (``<dataset>_hidden-<h>_batch-<b>``) and trial (setting); each trial's
    ``eval_measurements.csv``; and ``workload_targets.json`` with each workload's
    metric (``validation/accuracy``) and target, as the report chose them. ``frame``:
    every run of the folder; ``shown``: the runs that stand for it."""
    evaluated = shown[shown["iteration"].notna()]
    if evaluated.empty:
        return []
    time_col = tables.time_axis(frame)
    trials = tables.profile_trials(evaluated)
    targets = tables.cell_targets(evaluated, target)
    written = []
    for (sub, work, study, trial), runs in trials.groupby(
        ["submission", "workload", "study", "trial"], sort=True, observed=True
    ):
        measurements = pd.DataFrame(
            {
                "global_step": runs["grad_evals"].to_numpy(dtype=float),
                "accumulated_submission_time": runs[time_col].to_numpy(dtype=float),
                "validation/accuracy": runs["score"].to_numpy(dtype=float),
                "epoch": runs["epoch"].to_numpy(dtype=float),
            }
        )
        mine = trials[(trials["submission"] == sub) & (trials["workload"] == work)]
        trial_index = sorted(mine["trial"].unique()).index(trial)
        path = (out / str(sub) / f"study_{study}" / workload_name(work)
                / f"trial_{trial_index}" / "eval_measurements.csv")  # fmt: skip
        write_text(path, measurements.to_csv(index=False))
        written.append(path)
    meta = {
        workload_name(cell): {"metric": "validation/accuracy", "target": float(value),
                              "time_col": "accumulated_submission_time", "clock": time_col}
        for cell, value in targets.items()
    }  # fmt: skip
    path = out / "workload_targets.json"
    write_text(path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return [*written, path]


def workload_name(cell: tuple[Any, Any, Any]) -> str:
    """A cell as an AlgoPerf workload folder name: ``mnist_hidden-25_batch-50``
    (a dataset option's brackets and separators as ``-``)."""
    workload, hidden, batch = cell
    dataset = re.sub(r"[^A-Za-z0-9_.=-]+", "-", str(workload)).strip("-")
    return f"{dataset}_hidden-{hidden}_batch-{tables.batch_text(batch)}"
