"""Reports from a results folder: statistics (:mod:`.tables`), figures
(:mod:`.figures`, a registry) and their rendering (:mod:`.render`).

``build_report`` writes ``report.md``, a self-contained ``report.html`` and
every figure as PNG and SVG under ``figures/``. From Python, the tables are
DataFrames (``nnbench.report.tables``) and the figures matplotlib ``Figure``
objects (``nnbench.report.figures.make(name, Context(frame))``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nnbench import results
from nnbench.errors import NnbenchError
from nnbench.fileio import is_regular_file
from nnbench.report import figures as _figures
from nnbench.report import render, tables
from nnbench.report.figures import Context, colours
from nnbench.report.tables import (
    best_settings,
    blog_table,
    is_blog_setting,
    performance_profile,
    status_table,
    summary_table,
)
from nnbench.tune import current_finals

__all__ = [
    "Context",
    "best_settings",
    "blog_table",
    "build_report",
    "colours",
    "is_blog_setting",
    "performance_profile",
    "status_table",
    "summary_table",
    "tables",
]


def tuning_choices(results_dir: Path) -> list[dict[str, Any]] | None:
    """What a tuned study chose, from its ``tune.json`` (None before the choice)."""
    from nnbench.tune import read_choices

    return read_choices(results_dir)


def search_spaces(results_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The tuned experiment's search spaces, from its ``experiment.json``."""
    if not is_regular_file(results_dir / results.EXPERIMENT_FILE):
        return None
    try:
        experiment = json.loads((results_dir / results.EXPERIMENT_FILE).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(experiment, dict) or not experiment.get("tune"):
        return None
    from nnbench.tune import space_from_table

    spaces = {}
    for opt in experiment.get("optimizers") or []:
        try:
            spaces[opt["name"]] = {k: space_from_table(t) for k, t in opt["spaces"].items()}
        except (KeyError, TypeError, ValueError):
            continue
    return spaces


def _summary_view(summary: pd.DataFrame, target: float | None) -> pd.DataFrame:
    view = summary[["label", "hidden", "batch_size", "seeds", "ok"]].copy()
    view["batch_size"] = summary["batch_size"].map(tables.batch_text)
    for split, name in (("val", "val acc [95% CI]"), ("test", "test acc [95% CI]")):
        view[name] = [
            render.interval(m, lo, hi)
            for m, lo, hi in zip(
                summary[f"{split}_mean"], summary[f"{split}_low"], summary[f"{split}_high"]
            )
        ]
    view["train s"] = summary["train_seconds"]
    if target is not None:
        view[f"s to {target:g}"] = summary["seconds_to_target"]
        view[f"grad evals to {target:g}"] = summary["grad_evals_to_target"]
        view["seeds reaching"] = [f"{r}/{n}" for r, n in zip(summary["reached"], summary["seeds"])]
    return view


def build_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    target: float | None = None,
    title: str | None = None,
    figures: Sequence[str] | None = None,
) -> Path:
    """Write the report of ``results_dir``; return the HTML page's path."""
    results_dir = Path(results_dir)
    frame = current_finals(results.load(results_dir), tuning_choices(results_dir))
    if frame.empty:
        raise NnbenchError(f"{results_dir}: no runs to report on; run an experiment first")
    names = list(figures) if figures else _figure_names()
    for name in names:
        if name not in _figure_names():
            raise NnbenchError(f"unknown figure {name!r}; choose from {', '.join(_figure_names())}")
    out = Path(out_dir) if out_dir is not None else results_dir
    figdir = out / "figures"
    try:
        figdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnbenchError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    page = render.Page(title or f"{frame['experiment'].iloc[0]}: optimizer comparison")
    labels = _sections(page, frame, results_dir, target)
    spaces = search_spaces(results_dir)
    ctx = Context(frame, target, labels, spaces)
    for name in names:
        fig = _figures.make(name, ctx)
        if fig is None:
            continue
        png = render.save_figure(fig, figdir, name)
        page.figures.append((name, _figures.caption(name), png))
    return render.write(page, out, figdir)


def _sections(
    page: render.Page, frame: pd.DataFrame, results_dir: Path, target: float | None
) -> list[str] | None:
    """The report's tables and notes; returns the settings the figures draw
    (the best per optimizer, when an optimizer has several; None: all)."""
    statuses = results.final_rows(frame)["status"].value_counts()
    page.add(
        "Runs",
        ", ".join(f"{n} {s}" for s, n in statuses.items())
        + f" ({frame['run_id'].nunique()} runs).",
    )
    note = tables.same_method_note(frame)
    if note:
        page.add("", f"Note: {note}.")
    tuned = bool((frame["phase"] == "trial").any())
    # a tuned study is summarised by its finals; its trials feed the tuning figures
    summary = summary_table(frame[frame["phase"] != "trial"] if tuned else frame, target)
    best = best_settings(summary) if not summary.empty else summary
    several = not summary.empty and summary["label"].nunique() > best["label"].nunique()
    if is_blog_setting(frame):
        _blog_section(page, frame)
    if not summary.empty:
        page.add("Summary over seeds", "", _summary_view(summary, target))
        page.add(
            "",
            "Accuracy: the mean of the seeds' final accuracies, with a 95% percentile "
            "bootstrap interval over seeds (exact, from every resample; it stays within "
            "the seeds' range). 'ok' counts runs that completed, converged or were stopped."
            + (" Times to target are interpolated between evaluations." if target else ""),
        )
    chosen = tables.chosen_settings(frame, tuning_choices(results_dir))
    if not chosen.empty:
        _tuning_section(page, chosen)
    elif several:
        view = best[["optimizer", "hidden", "batch_size", "label", "val_mean"]].copy()
        view["batch_size"] = view["batch_size"].map(tables.batch_text)
        view["test acc [95% CI]"] = [
            render.interval(m, lo, hi)
            for m, lo, hi in zip(best["test_mean"], best["test_low"], best["test_high"])
        ]
        view = view.rename(columns={"label": "best setting", "val_mean": "val acc"})
        page.add("Best setting per optimizer, chosen on validation", "", view)
    ok_frame = frame[frame["status"].isin(tables.OK) | frame["iteration"].notna()]
    _profile_section(page, ok_frame, target)
    bad = status_table(frame)
    page.add(f"Runs that did not end normally ({len(bad)})", "", bad)
    return best["label"].tolist() if several else None


def _figure_names() -> list[str]:
    return _figures.available()


def _blog_section(page: render.Page, frame: pd.DataFrame) -> None:
    blog = blog_table(frame)
    view = pd.DataFrame(
        {
            "optimizer": blog["optimizer"],
            "post: seconds": blog["post_seconds"],
            "post: accuracy": blog["post_accuracy"],
            "seeds": blog["seeds"],
            "ours: accuracy [95% CI]": [
                render.interval(m, lo, hi)
                for m, lo, hi in zip(
                    blog["accuracy_mean"], blog["accuracy_low"], blog["accuracy_high"]
                )
            ],
            "ours: sd": blog["accuracy_std"],
            "ours: training seconds": blog["seconds"],
        }
    )
    page.add("The post's table, reproduced", "", view)
    page.add(
        "",
        "One configuration per row. The post: one run (its own generator, seed 1234) on a "
        "2013 laptop, its time including the cost on the whole training set after every "
        "update. Ours: the final validation accuracy over seeds, and training time without "
        "evaluation; the two time columns are not a speed-up.",
    )


def _tuning_section(page: render.Page, chosen: pd.DataFrame) -> None:
    view = chosen.copy()
    view["batch_size"] = view["batch_size"].map(tables.batch_text)
    view["final test acc [95% CI]"] = [
        render.interval(m, lo, hi)
        for m, lo, hi in zip(view["final test acc"], view["test low"], view["test high"])
    ]
    view = view.drop(columns=["final test acc", "test low", "test high"])
    page.add("Tuned settings, chosen on validation", "", view)
    page.add(
        "",
        "Each optimizer's best trial (mean validation accuracy over the trial seeds), rerun "
        "over the final seeds; test accuracy is reported, never used to choose. 'edge' marks "
        f"an option whose choice lies in the outer {tables.EDGE:.0%} of its search space "
        "(in log scale for a log-uniform space): a wider space could do better.",
    )


def _profile_section(page: render.Page, frame: pd.DataFrame, target: float | None) -> None:
    try:
        times, _ratios, _rho, score = performance_profile(frame, target)
    except (KeyError, ValueError):
        return
    if times.empty:
        return
    view = times.copy()
    view.columns = [f"s to target: {h}, batch {tables.batch_text(b)}" for h, b in view.columns]
    view.insert(0, "AlgoPerf score", score.reindex(view.index))
    view = view.reset_index().rename(columns={"submission": "optimizer"})
    page.add("Performance profile (AlgoPerf's rule)", "", view)
    page.add(
        "",
        _target_text(frame, target)
        + " Seconds to target per cell, by the rule of MLCommons AlgoPerf's "
        "scoring/performance_profile.py: per seed (a study), the setting that reaches the "
        "target at the earliest evaluation; the median over seeds, a seed where none "
        "reaches it counting as never (inf); a time beyond 4x the cell's fastest counts as "
        "never. The score is the profile's area over tau from 1 to the largest finite "
        "ratio, divided by that range. In a tuned study, the final runs: each optimizer "
        "with its chosen setting, on seeds the choice never saw.",
    )


def _target_text(frame: pd.DataFrame, target: float | None) -> str:
    """The sentence that says which validation accuracy counts as reached."""
    if target is not None:
        return f"Target: validation accuracy {target:g} in every cell."
    targets = tables.cell_targets(frame, None)
    cells = ", ".join(
        f"{h}, batch {tables.batch_text(b)}: {value:.4f}" for (h, b), value in targets.items()
    )
    return (
        "Target per cell: 99% of the best median final validation accuracy of a setting "
        f"in the cell ({cells}); give one with --target."
    )
