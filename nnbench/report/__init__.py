"""Reports from a results folder: statistics (:mod:`.tables`), figures
(:mod:`.figures`, a registry) and their rendering (:mod:`.render`).

``build_report`` writes ``report.md``, a self-contained ``report.html`` and
every figure as PNG and SVG under ``figures/``. From Python, the tables are
DataFrames (``nnbench.report.tables``) and the figures matplotlib ``Figure``
objects (``nnbench.report.figures.make(name, Context(frame))``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnbench import ownership, results, stats
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
from nnbench.tune import read_choices, reported

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


def search_spaces(results_dir: Path) -> dict[str, dict[str, Any]] | None:
    """The tuned experiment's search spaces, from its ``experiment.json``."""
    if not is_regular_file(results_dir / ownership.EXPERIMENT_FILE):
        return None
    try:
        experiment = json.loads((results_dir / ownership.EXPERIMENT_FILE).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(experiment, dict) or not experiment.get("tune"):
        return None
    from nnbench.space import space_from_table

    spaces = {}
    for opt in experiment.get("optimizers") or []:
        try:
            spaces[opt["name"]] = {k: space_from_table(t) for k, t in opt["spaces"].items()}
        except (KeyError, TypeError, ValueError):
            continue
    return spaces


def workload_targets(results_dir: Path) -> dict[str, float] | None:
    """The targets the experiment file gave its workloads (``[[workload]] target``),
    from its ``experiment.json``; None when it gave none."""
    try:
        experiment = json.loads((results_dir / ownership.EXPERIMENT_FILE).read_text())
        given = {w["name"]: float(w["target"]) for w in experiment.get("workloads") or []
                 if w.get("target") is not None}  # fmt: skip
    except (OSError, ValueError, RecursionError, AttributeError, KeyError, TypeError):
        return None
    return given or None


@dataclass(frozen=True)
class Built:
    """A written report: the HTML page, and the figures that could not be drawn
    (name: the error), each a note in the report too."""

    path: Path
    failed: dict[str, str]


def build_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    target: tables.Target = None,
    title: str | None = None,
    figures: Sequence[str] | None = None,
) -> Path:
    """Write the report of ``results_dir``; return the HTML page's path."""
    return build(results_dir, out_dir, target, title, figures).path


def build(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    target: tables.Target = None,
    title: str | None = None,
    figures: Sequence[str] | None = None,
) -> Built:
    """Write the report of ``results_dir``: a figure that fails is a note, and named
    in :attr:`Built.failed` (``nnbench report`` then exits with its own status)."""
    results_dir = Path(results_dir)
    frame = results.load(results_dir)
    if frame.empty:
        raise NnbenchError(f"{results_dir}: no runs to report on; run an experiment first")
    names = _figures.available() if figures is None else list(figures)  # [] draws none
    for name in names:
        if name not in _figures.available():
            raise NnbenchError(
                f"unknown figure {name!r}; choose from {', '.join(_figures.available())}"
            )
    out = Path(out_dir) if out_dir is not None else results_dir
    figdir = out / "figures"
    made = not figdir.exists()
    try:
        figdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnbenchError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    chosen = read_choices(results_dir)
    shown = reported(frame, chosen)
    if target is None:
        target = workload_targets(results_dir)
    time_col = tables.time_axis(frame)
    page = render.Page(title or f"{frame['experiment'].iloc[0]}: optimizer comparison")
    cache: dict[str, Any] = {}  # what the tables computed that the figures draw again
    labels = _sections(page, frame, shown, chosen, target, time_col, cache)
    ctx = Context(frame, target, labels, search_spaces(results_dir), cache, shown, time_col)
    failed: dict[str, str] = {}
    written: list[Path] = []
    try:
        for name in names:
            try:
                fig = _figures.make(name, ctx)
            except Exception as exc:  # a figure's failure is a note, not the end of the report
                failed[name] = f"{type(exc).__name__}: {exc}"
                page.notes.append(f"figure {name} could not be drawn: {failed[name]}")
                continue
            if fig is None:
                continue
            written += [figdir / f"{name}.png", figdir / f"{name}.svg"]
            png = render.save_figure(fig, figdir, name)
            page.figures.append((name, _figures.caption(name), png))
        return Built(render.write(page, out, figdir), failed)
    except OSError as exc:  # a full disk, say: no figures stay of a report not written
        if made:
            for path in written:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                figdir.rmdir()  # only when empty: nothing but what this build wrote
        raise NnbenchError(
            f"cannot write the report: {exc.filename or out}: {exc.strerror or exc}; "
            "free some space (or choose another --out) and run nnbench report again"
        ) from None


def _sections(
    page: render.Page,
    frame: pd.DataFrame,
    shown: pd.DataFrame,
    chosen: list[dict[str, Any]] | None,
    target: tables.Target,
    time_col: str,
    cache: dict[str, Any],
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
    if tuned and shown.empty:
        _missing_finals(page, frame)
    summary = summary_table(shown, target, time_col) if not shown.empty else pd.DataFrame()
    best = best_settings(summary) if not summary.empty else summary
    several = not summary.empty and summary["name"].nunique() > best["name"].nunique()
    if is_blog_setting(frame):
        _blog_section(page, frame)
    if not summary.empty:
        page.add("Summary over seeds", "", _summary_view(summary, target))
        clock = tables.clock_text(time_col, tables.shared_machine(frame))
        page.add("", _summary_text(summary, target, clock))
    chosen_table = tables.chosen_settings(shown, chosen)
    if not chosen_table.empty:
        _tuning_section(page, chosen_table)
    elif several:
        _best_section(page, best)
    ok = shown[shown["status"].isin(tables.OK) | shown["iteration"].notna()]
    if not ok.empty:
        cache["profile"] = _profile_section(page, frame, ok, target, time_col, cache)
        _aggregate_section(page, ok, cache)
        if ok["workload"].nunique() > 1:
            _workload_section(page, ok, target, time_col, cache)
        _pairwise_section(page, ok)
    bad = status_table(frame)
    page.add(f"Runs that did not end normally ({len(bad)})", "", bad)
    return best["name"].tolist() if several else None


def _workload_section(
    page: render.Page,
    shown: pd.DataFrame,
    target: tables.Target,
    time_col: str,
    cache: dict[str, Any],
) -> None:
    """Each optimizer over all workloads and in each alone: where the order moves
    (over all, the profile's and the aggregates' numbers, computed above)."""
    overall = cache.get("score_uncertainty"), cache.get("aggregates", (None,))[0]
    standing = tables.by_workload(shown, target, time_col, overall=overall)
    if standing.empty:
        return
    workloads = [w for w in standing["workload"].unique() if w != "all"]
    overall = standing[standing["workload"] == "all"].sort_values(["rank", "optimizer"])
    view = pd.DataFrame({"optimizer": overall["optimizer"]})
    for workload in ["all", *workloads]:
        mine = standing[standing["workload"] == workload].set_index("optimizer")
        mine = mine.reindex(view["optimizer"])
        view[f"{workload}: score [bootstrap] (rank)"] = [
            f"{render.interval(s, lo, hi, digits=2)} ({r:.0f})" if np.isfinite(s) else ""
            for s, lo, hi, r in zip(mine["score"], mine["low"], mine["high"], mine["rank"])
        ]
        view[f"{workload}: IQM"] = [render.fmt(v, 3) for v in mine["iqm"]]
    page.add("By workload", "", view)
    order = " > ".join(overall["optimizer"])
    moves = []
    for workload in workloads:
        mine = standing[standing["workload"] == workload].sort_values(["rank", "optimizer"])
        if list(mine["optimizer"]) != list(overall["optimizer"]):
            moves.append(f"{workload} alone: {' > '.join(mine['optimizer'])}")
    page.add(
        "",
        "The AlgoPerf score (as above) over every workload's cells, and over each "
        "workload's cells alone (its targets the same), with the IQM of normalised test "
        f"accuracy the same way. The order over all workloads: {order}. "
        + ("; ".join(moves) + "." if moves else "Every workload alone gives the same order.")
        + " A score over one workload is over its cells only: two networks of one dataset "
        "say less about an optimizer than the study's three datasets.",
    )


def _missing_finals(page: render.Page, frame: pd.DataFrame) -> None:
    trials = tables.trial_table(frame)
    page.add(
        "Tuning: trials only",
        f"The study's trials are in ({frame.loc[frame['phase'] == 'trial', 'run_id'].nunique()} "
        "runs), but none of its final runs: the numbers an optimizer is reported by are its "
        "chosen setting's reruns on the final seeds. Run the same command again to run "
        "them. The trials' mean final validation accuracies:",
        trials,
    )


def _summary_view(summary: pd.DataFrame, target: tables.Target) -> pd.DataFrame:
    view = summary[["name", *tables.CELL, "seeds", "ok"]].copy()
    view = view.rename(columns={"name": "configuration"})
    view["batch_size"] = summary["batch_size"].map(tables.batch_text)
    for split, name in (("val", "val acc [95% CI]"), ("test", "test acc [95% CI]")):
        view[name] = [
            render.interval(m, lo, hi, clipped)
            for m, lo, hi, clipped in zip(
                summary[f"{split}_mean"],
                summary[f"{split}_low"],
                summary[f"{split}_high"],
                summary[f"{split}_clipped"],
            )
        ]
    view["train s (wall)"] = summary["train_seconds"]
    view["train s (CPU)"] = summary["train_cpu_seconds"]
    if target is not None:
        to = f"{target:g}" if isinstance(target, float | int) else "target"
        view[f"s to {to}"] = summary["seconds_to_target"]
        view[f"grad evals to {to}"] = summary["grad_evals_to_target"]
        view["seeds reaching"] = [f"{r}/{n}" for r, n in zip(summary["reached"], summary["seeds"])]
    return view


def _summary_text(summary: pd.DataFrame, target: tables.Target, clock: str) -> str:
    clipped = bool(summary[["val_clipped", "test_clipped"]].to_numpy().any())
    text = (
        "Accuracy: the mean of the seeds' final accuracies with its 95% Student's t "
        "interval over the seeds (it covers the mean 95% of the time for normal "
        "values, at 3 seeds as at 10: tests/test_stats.py simulates it)."
    )
    if clipped:
        text += " An interval marked * reached beyond [0, 1] and was cut there."
    text += " 'ok' counts runs that completed, converged or were stopped."
    if target is not None:
        text += (
            f" Seconds to target: {clock}, interpolated between "
            "evaluations; the median over the seeds that reached it."
        )
    return text


def _blog_section(page: render.Page, frame: pd.DataFrame) -> None:
    blog = blog_table(frame)
    view = pd.DataFrame(
        {
            "optimizer": blog["optimizer"],
            "post: seconds": blog["post_seconds"],
            "post: accuracy": blog["post_accuracy"],
            "seeds": blog["seeds"],
            "ours: accuracy [95% CI]": [
                render.interval(m, lo, hi, c)
                for m, lo, hi, c in zip(
                    blog["accuracy_mean"],
                    blog["accuracy_low"],
                    blog["accuracy_high"],
                    blog["accuracy_clipped"],
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
        "update. Ours: the final validation accuracy over seeds with its 95% t interval, "
        "and training time without evaluation; the two time columns are not a speed-up.",
    )


def _tuning_section(page: render.Page, chosen: pd.DataFrame) -> None:
    view = chosen.copy()
    view["batch_size"] = view["batch_size"].map(tables.batch_text)
    view["final test acc [95% CI]"] = [
        render.interval(m, lo, hi, c)
        for m, lo, hi, c in zip(
            view["final test acc"], view["test low"], view["test high"], view["test clipped"]
        )
    ]
    view = view.drop(columns=["final test acc", "test low", "test high", "test clipped"])
    page.add("Tuned settings, chosen on validation", "", view)
    page.add(
        "",
        "Each optimizer's best trial (mean validation accuracy over the trial seeds), rerun "
        "over the final seeds; test accuracy is reported, never used to choose. 'edge' marks "
        f"an option whose choice lies in the outer {tables.EDGE:.0%} of its search space "
        "(in log scale for a log-uniform space): a wider space could do better.",
    )


def _best_section(page: render.Page, best: pd.DataFrame) -> None:
    view = best[["optimizer", *tables.CELL, "name", "val_mean"]].copy()
    view["batch_size"] = view["batch_size"].map(tables.batch_text)
    view["test acc [95% CI]"] = [
        render.interval(m, lo, hi, c)
        for m, lo, hi, c in zip(
            best["test_mean"], best["test_low"], best["test_high"], best["test_clipped"]
        )
    ]
    view = view.rename(columns={"name": "best setting", "val_mean": "val acc"})
    page.add("Best setting per optimizer, chosen on validation", "", view)


def _profile_section(
    page: render.Page,
    frame: pd.DataFrame,
    shown: pd.DataFrame,
    target: tables.Target,
    time_col: str,
    cache: dict[str, Any],
) -> tables.Profile | None:
    try:
        profile = performance_profile(shown, target, time_col)
    except (KeyError, ValueError):
        return None
    if profile.times.empty:
        return profile
    spread = tables.timing_spread(shown)
    noise = float(spread[time_col].median()) if not spread.empty else 0.0
    ties = tables.ties_with_fastest(profile.times, noise)
    times, tied = profile.times.to_numpy(dtype=float), ties.to_numpy(dtype=bool)
    fastest = times.min(axis=0)
    text = [
        [_time_text(t, best, tie) for t, tie, best in zip(row, tie_row, fastest)]
        for row, tie_row in zip(times, tied)
    ]
    view = pd.DataFrame(
        text,
        index=profile.times.index,
        columns=[f"s to target: {tables.cell_text(cell)}" for cell in profile.times],
    )
    uncertainty = cache["score_uncertainty"] = tables.score_uncertainty(profile)
    view.insert(0, "AlgoPerf score [bootstrap]", [
        render.interval(uncertainty.loc[o, "score"], uncertainty.loc[o, "low"],
                        uncertainty.loc[o, "high"], digits=2)
        for o in view.index
    ])  # fmt: skip
    view = view.loc[uncertainty.index].reset_index().rename(columns={"submission": "optimizer"})
    page.add("Performance profile (AlgoPerf's rule)", "", view)
    clock = tables.clock_text(time_col, tables.shared_machine(frame))
    page.add("", _profile_text(shown, target, clock, spread, noise))
    beats = uncertainty[[c for c in uncertainty.columns if c.startswith("beats ")]]
    beats = beats.rename(columns=lambda c: c.removeprefix("beats "))
    page.add(
        "",
        "How often each optimizer's score (row) is above another's (column) when the seeds "
        "are resampled within each cell: a share of bootstrap resamples, not a p-value.",
        beats.reset_index().rename(columns={"index": "optimizer"}),
    )
    external = tables.external_tuning_scores(frame, target, time_col)
    if external is not None and tables.stacked(frame).any():
        # Stacked trials have no clock of their own: both mappings on gradient evaluations.
        chosen_score = tables.performance_profile(shown, target, "grad_evals").score
        external = tables.external_tuning_scores(frame, target, "grad_evals")
        page.add("", _robustness_text(chosen_score, external, stacked=True))
    elif external is not None:
        page.add("", _robustness_text(profile.score, external))
    return profile


def _time_text(time: float, fastest: float, tie: bool) -> str:
    """A time to target as AlgoPerf's rule counts it: beyond 4x the cell's fastest
    is never (the time in brackets), within timing noise of the fastest a tie."""
    if np.isinf(time):
        return "never"
    if np.isfinite(time) and time > stats.ALGOPERF_MAX_RATIO * fastest:
        return f"never ({render.fmt(time)}: beyond {stats.ALGOPERF_MAX_RATIO:g}x)"
    return render.fmt(time) + (" (tie)" if tie and time != fastest else "")


def _profile_text(
    shown: pd.DataFrame, target: tables.Target, clock: str, spread: pd.DataFrame, noise: float
) -> str:
    tuned = bool((shown["phase"] == "final").any())
    mapping = (
        "each optimizer is a submission with one trial, its chosen setting, and each final "
        "seed is a study (seeds the choice never saw)"
        if tuned
        else "each optimizer is a submission, each seed a study, each setting a trial"
    )
    timing = ""
    if not spread.empty:
        clocks = ", ".join(
            f"{name} {spread[col].median():.0%}"
            for name, col in (("CPU", "train_cpu_seconds"), ("wall", "train_seconds"))
            if col in spread and spread[col].notna().any()  # older runs have no CPU clock
        )
        timing = (
            f" Repeated timings of one setting (its seeds, which do the same work per "
            f"gradient evaluation) spread by a median {noise:.0%} on this clock "
            f"({clocks}); a time within that of the cell's fastest is marked (tie): the "
            "runs cannot rank the two."
        )
    return (
        _target_text(shown, target) + f" Times: {clock}. Per cell, by "
        "the rule of MLCommons "
        "AlgoPerf's scoring/performance_profile.py: per study the setting that reaches the "
        "target at the earliest evaluation; the median over studies, a study where none "
        "reaches it counting as never (inf); a time beyond 4x the cell's fastest counts as "
        f"never. Mapping: {mapping}. The score is AlgoPerf's leaderboard score "
        "(score_submissions.py): the profile's area over tau from 1 to 4 (100 points), "
        "divided by 3. In brackets, the 2.5th to 97.5th percentile of the score when each "
        "optimizer's seeds are resampled within each cell (rliable's stratified bootstrap); "
        f"in simulated studies it covers the true score {tables.SCORE_COVERAGE}." + timing
    )


def _robustness_text(score: pd.Series, external: pd.Series, stacked: bool = False) -> str:
    order = list(score.sort_values(ascending=False).index)
    other = list(external.reindex(order).sort_values(ascending=False, kind="stable").index)
    scores = ", ".join(f"{o} {external.get(o, float('nan')):.2f}" for o in other)
    agree = (
        "the two orders agree"
        if order == other
        else f"the orders disagree: {' > '.join(order)} here, {' > '.join(other)} there"
    )
    if stacked:
        return (
            "Robustness, on gradient evaluations to the target instead of seconds (the trials "
            "trained in stacks, which have no clock of their own; nnbench run --no-stack times "
            "each): "
            "the chosen settings' scores are "
            + ", ".join(f"{o} {score.get(o, float('nan')):.2f}" for o in order)
            + "; under AlgoPerf's external-tuning mapping instead (a study is a trial seed, its "
            "trials the sampled settings, the fastest trial per study, from the tuning runs) "
            f"they are {scores}; {agree}."
        )
    return (
        "Robustness: under AlgoPerf's external-tuning mapping instead (a study is a trial "
        "seed, its trials the sampled settings, the fastest trial per study, from the "
        f"tuning runs), the scores are {scores}; {agree}."
    )


def _aggregate_section(page: render.Page, shown: pd.DataFrame, cache: dict[str, Any]) -> None:
    iqm, pi = cache["aggregates"] = tables.aggregates(shown)
    if iqm.empty:
        return
    view = pd.DataFrame(
        {
            "optimizer": iqm["optimizer"],
            "IQM of normalised test accuracy (0 chance, 1 perfect) [bootstrap]": [
                render.interval(m, lo, hi, digits=3)
                for m, lo, hi in zip(iqm["iqm"], iqm["low"], iqm["high"])
            ],
        }
    )
    page.add("Over all cells (rliable's aggregates)", "", view)
    matrix = pi.pivot(index="x", columns="y", values="p")
    cells = {
        (r["x"], r["y"]): render.interval(r["p"], r["low"], r["high"], digits=2)
        for r in pi.to_dict("records")
    }
    table = pd.DataFrame(
        [[cells.get((x, y), "") for y in matrix.columns] for x in matrix.index],
        index=matrix.index,
        columns=matrix.columns,
    )
    page.add(
        "",
        "Each run's final test accuracy normalised by fixed reference scores, as rliable "
        f"normalises, the same in every cell whichever optimizers are compared: "
        f"{tables.NORMALISATION}; then per optimizer the interquartile mean over every run of "
        "every cell (Agarwal et al. 2021); below, the probability of improvement P(row > "
        "column): the chance that a run of the row beats a run of the column in the same "
        "cell, averaged over cells. Brackets: the 2.5th to 97.5th percentiles over "
        "stratified bootstrap resamples (seeds resampled within each cell); on a simulated "
        f"known case they cover the true value ({tables.AGGREGATE_COVERAGE}).",
        table.reset_index().rename(columns={"x": "P(row > column)"}),
    )


def _pairwise_section(page: render.Page, shown: pd.DataFrame) -> None:
    study, per_cell, missing = tables.pairwise_verdicts(shown)
    if study.empty:
        return
    one_cell = per_cell.empty
    view = pd.DataFrame(
        {
            "pair": study["a"] + " vs " + study["b"],
            "seeds": study["n"],
            "mean difference (second - first) [95% CI]": [
                render.interval(m, lo, hi, digits=4)
                for m, lo, hi in zip(study["mean"], study["low"], study["high"])
            ],
            "seeds: second higher / lower": [
                f"{h} / {lo}" for h, lo in zip(study["seeds_higher"], study["seeds_lower"])
            ],
            **(
                {}
                if one_cell
                else {
                    "cells: second higher / lower": [
                        f"{h} / {lo}" for h, lo in zip(study["cells_higher"], study["cells_lower"])
                    ]
                }
            ),
            "test": study["test"],
            "p (Holm)": [render.fmt(p, 3) for p in study["p_holm"]],
            "ends higher": [v or "no verdict" for v in study["verdict"]],
        }
    )
    page.add("Which optimizer ends higher (paired tests, Holm-corrected)", "", view)
    level = 0.05 if one_cell else 0.025
    fewest = int(study["n"].min())
    tests = _tests_text(study, level)
    if one_cell:
        unit = (
            "Per pair of optimizers: the mean paired difference over the seeds, its 95% t "
            "interval, and a test of it"
        )
        family = f"Holm's correction over the {len(study)} pairs at 5% (one cell: one family)"
        by_cell = ""
    else:
        unit = (
            "Per pair of optimizers, over the study: each seed's differences averaged over "
            "the cells both ran with it, and a test over the seeds (the estimand: the mean "
            "over cells of the mean paired difference). The seed is the unit: one seed's "
            "cells share their minibatch order, and a network's two batch sizes their start "
            "weights, so a seed's cells are not independent of one another, while seeds are"
        )
        family = (
            f"Holm's correction over the {len(study)} pairs at 2.5% and over the "
            f"{len(per_cell)} cell-by-cell tests at 2.5%"
        )
        found = per_cell[per_cell["verdict"] != ""]
        cell_text = (
            "; ".join(
                f"{r['verdict']} above {r['a'] if r['verdict'] == r['b'] else r['b']} "
                f"({tables.cell_text(r['cell'])}, "
                f"by {abs(r['mean']):.4f} [{r['low']:+.4f}, {r['high']:+.4f}], "
                f"{r['seeds_higher']} / {r['seeds_lower']} seeds, {r['test']}, "
                f"Holm p = {render.fmt(r['p_holm'], 3)})"
                for r in found.to_dict("records")
            )
            if not found.empty
            else "none"
        )
        by_cell = f" Cell by cell ({len(per_cell)} tests over each cell's seeds): {cell_text}."
    left_out = (
        f" {missing} run(s) with no final value (failed before an evaluation) are left out."
        if missing
        else ""
    )
    fwer = tables.PAIRWISE_FWER_ONE_CELL if one_cell else tables.PAIRWISE_FWER
    page.add(
        "",
        "Final test accuracy. Runs of two optimizers with the same seed in the same cell "
        "start from the same weights and see the same minibatches, so they are paired; a "
        f"run that diverged counts with its final value. {unit}. {tests} {family}: the "
        f"chance of any wrong verdict is {fwer}. "
        f'"no verdict" is not a tie: the seeds cannot tell (here {fewest} or more seeds a '
        "pair)." + by_cell + left_out,
    )


def _tests_text(study: pd.DataFrame, level: float) -> str:
    """Which test decided, and why."""
    m = len(study)
    used = set(study["test"])
    n = int(study["n"].min())
    if used == {"sign-flip"}:
        return (
            "The test: the exact sign-flip test (no difference: every difference as likely "
            "positive as negative; no normality assumed), whose smallest p-value with "
            f"{n} seeds, {2 / 2**n:.2g}, reaches Holm's first level ({level:g} / {m})."
        )
    return (
        f"The test: with {n} seeds no sign-flip test can reach Holm's first level "
        f"({level:g} / {m} = {level / m:.2g}; its smallest p-value is {2 / 2**n:.2g}), so a "
        "paired t-test decides, its spread never below one image of the metric (a floor "
        "the data cannot drive to zero, so that equal moves are not certainty; its error "
        "rate for accuracies in steps of one image is simulated in tests/test_stats.py)."
    )


def _target_text(frame: pd.DataFrame, target: tables.Target) -> str:
    """The sentence that says which validation accuracy counts as reached."""
    if isinstance(target, float | int):
        return f"Target: validation accuracy {target:g} in every cell."
    targets = tables.cell_targets(frame, target)
    cells = ", ".join(
        f"{tables.cell_text(cell)}: {value:.4f}"
        + (" (the file's)" if tables.target_source(target, cell[0]) == "given" else "")
        for cell, value in targets.items()
    )
    return (
        f"Target per cell: validation accuracy, as the experiment file's [[workload]] target "
        f"gives it, else {tables.TARGET_RULE} ({cells}); give one for every cell with --target."
    )
