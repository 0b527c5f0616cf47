"""The report's tables, as DataFrames computed from the long results table.

A *configuration* is everything but the seed (its ``config_id``); a *cell*
is one problem of the grid, a workload (a dataset with its options) x an
architecture x a batch size. Hyperparameters
are chosen on validation accuracy; test accuracy is reported for the chosen
ones and never used to choose. The tables take the runs that stand for a
folder (:func:`nnbench.tune.reported`: a tuned study's current finals);
the tuning tables take its trials.

Intervals over seeds are Student's t intervals of the mean, clipped to
[0, 1] for an accuracy (``*_clipped`` says where). Times are the runs' own
CPU seconds (``train_cpu_seconds``) wherever runs shared the machine, as
:func:`time_axis` decides: wall seconds move with whatever else runs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nnbench import stats
from nnbench.results import batch_number, final_rows
from nnbench.stats import stratified_resamples
from nnbench.status import Status

CELL = ["workload", "hidden", "batch_size"]
CONFIG = ["config_id", "name", "label", "optimizer", *CELL]
OK = [s.value for s in Status if s.is_ok]
# Where a tuned choice sits in its search space, as a fraction of it (in log
# scale for log-uniform spaces): outside [EDGE, 1 - EDGE] it is an "edge".
EDGE = 0.1  # the same as nnbench.tune.EDGE_FRACTION

# The post's table: its setting, and per optimizer the label of our run of
# that setting with the post's published time (seconds) and validation accuracy.
BLOG_SETTING = {"dataset": "mnist", "hidden": "25", "batch_size": 50.0, "max_iter": 100}
BLOG_TABLE = {
    "gd": ("GD, learning rate 0.3", 284.0, 0.8316),
    "rmsprop_blog": ("RMSPROP as published (decay 0.9)", 297.0, 0.1863),
    "cg": ("CG, mb_maxiter 10", 314.0, 0.8607),
}
BLOG_EXTRA = {
    "rmsprop[learning_rate=0.01]": "RMSPROP fixed (learning rate 0.01)",
    "momentum[learning_rate=0.3]": "momentum, the post's look-ahead form (0.3 / 0.9)",
    "lbfgsb": "L-BFGS-B, mb_maxiter 10",
}
# Pairs of (optimizer, options) that are one method under two names.
SAME_METHOD = (("momentum", "nesterov"),)


def batch_text(batch: float) -> str:
    if math.isinf(batch):
        return "full"
    return f"{int(batch)}" if batch >= 1 else f"{batch:g} of the rows"


def cell_text(cell: tuple) -> str:
    """``mnist, hidden 25, batch 50``: a cell, (workload, hidden, batch size)."""
    workload, hidden, batch = cell
    return f"{workload}, hidden {hidden}, batch {batch_text(batch)}"


def cells_of(frame: pd.DataFrame) -> list[tuple]:
    """The cells of ``frame`` as (workload, hidden, batch size), one row's each."""
    return list(zip(frame["workload"], frame["hidden"], frame["batch_size"]))


TIME_AXES = ("train_seconds", "train_cpu_seconds")


def with_time_to_target(frame: pd.DataFrame, target: float | pd.Series) -> pd.DataFrame:
    """One row per run: ``reached``, and the interpolated training seconds (wall and
    CPU), gradient evaluations and epochs at which it first reached ``target``
    (a number, or a Series by cell ``(workload, hidden, batch_size)``)."""
    rows = []
    axes = (*TIME_AXES, "grad_evals", "epoch")
    for run_id, run in frame.dropna(subset=["iteration"]).groupby("run_id", sort=False):
        run = run.sort_values("iteration")
        tgt = target
        if isinstance(target, pd.Series):
            tgt = target.get(cells_of(run.iloc[:1])[0], math.nan)
        row = {"run_id": run_id}
        for axis in axes:
            value, index = stats.time_to_target(run[axis], run["val_accuracy"], tgt)
            row[f"{axis}_to_target"] = value
        row["reached"] = index >= 0
        rows.append(row)
    columns = ["run_id", "reached", *(f"{a}_to_target" for a in axes)]
    return pd.DataFrame(rows, columns=columns)


def shared_machine(frame: pd.DataFrame) -> bool | None:
    """Whether runs shared the machine (more than one at a time, or a Dask
    cluster); None when the runs did not record how they were run."""
    empty = pd.Series(dtype=object)
    jobs = pd.to_numeric(frame.get("n_jobs", empty), errors="coerce")
    backend = frame.get("backend", empty).astype(object)
    if bool((jobs > 1).any()) or bool((backend == "dask").any()):
        return True
    return False if jobs.notna().any() else None


def stacked(frame: pd.DataFrame) -> pd.Series:
    """Which rows are a stacked trial's (:mod:`nnbench.stack`): their clocks are
    empty; their stack's seconds are not theirs."""
    if "stack_seconds" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["stack_seconds"].notna()


def time_axis(frame: pd.DataFrame) -> str:
    """The clock that times a folder's runs: their CPU seconds when runs shared
    the machine and every run recorded them; else the wall clock. Stacked
    trials, which have no clock of their own, are left out of the question."""
    frame = frame[~stacked(frame)]
    cpu = frame["train_cpu_seconds"] if "train_cpu_seconds" in frame else pd.Series(dtype=float)
    if cpu.empty or cpu.isna().all():
        return "train_seconds"
    evaluated = frame.dropna(subset=["iteration"])
    complete = not evaluated.empty and evaluated["train_cpu_seconds"].notna().all()
    return "train_cpu_seconds" if shared_machine(frame) and complete else "train_seconds"


def clock_text(time_col: str, shared: bool | None = False) -> str:
    """What the times of a report are, said where they are shown."""
    if time_col == "train_cpu_seconds":
        return (
            "the CPU seconds of each run's own process (runs shared the machine, and wall "
            "seconds move with what else runs)"
        )
    if shared:
        return (
            "wall seconds of runs that shared the machine (they recorded no CPU seconds), "
            "so they move with what else ran: rank by them only beyond their spread"
        )
    if shared is None:
        return "wall seconds (the runs did not record whether they shared the machine)"
    return "wall seconds (the runs ran one at a time)"


def accuracy_interval(values: pd.Series) -> stats.Interval:
    """The mean of an accuracy over seeds with its 95% t interval, clipped to [0, 1]."""
    return stats.t_interval(values, bounds=(0.0, 1.0))


def summary_table(
    frame: pd.DataFrame, target: Target = None, time_col: str = "train_seconds"
) -> pd.DataFrame:
    """Per configuration, over its seeds.

    Final validation and test accuracy: mean and 95% Student's t interval over
    seeds, clipped to [0, 1] (``*_low``, ``*_high``, ``*_clipped``); training
    seconds on both clocks; with ``target``, the median interpolated seconds
    (on ``time_col``) and gradient evaluations to reach it over the seeds that
    did, and how many did.
    """
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame()
    if target is not None:
        per_cell = target if isinstance(target, float | int) else cell_targets(frame, target)
        last = last.merge(with_time_to_target(frame, per_cell), on="run_id", how="left")
    out = []
    last = last.sort_values(["name", *CELL], kind="stable")
    for key, group in last.groupby(CONFIG, sort=False, dropna=False):
        row = dict(zip(CONFIG, key))
        row["phase"] = group["phase"].iloc[0] if "phase" in group else "grid"
        row["seeds"] = len(group)
        row["ok"] = int(group["status"].isin(OK).sum())
        for split in ("val", "test"):
            values = group[f"{split}_accuracy"]
            interval = accuracy_interval(values)
            row[f"{split}_mean"] = interval.mean
            row[f"{split}_std"] = values.std(ddof=1)
            row[f"{split}_low"], row[f"{split}_high"] = interval.low, interval.high
            row[f"{split}_clipped"] = interval.clipped
        row["train_seconds"] = group["train_seconds"].mean()
        row["train_cpu_seconds"] = group["train_cpu_seconds"].mean()
        row["total_seconds"] = group["train_seconds"].sum()
        if target is not None:
            reached = group[group["reached"].fillna(False).astype(bool)]
            row["reached"] = len(reached)
            row["seconds_to_target"] = reached[f"{time_col}_to_target"].median()
            row["grad_evals_to_target"] = reached["grad_evals_to_target"].median()
        out.append(row)
    return pd.DataFrame(out)


def best_settings(summary: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and cell, the configuration with the best mean validation accuracy."""
    if summary.empty:
        return summary
    ranked = summary.sort_values(["val_mean", "name"], ascending=[False, True])
    return (
        ranked.groupby(["optimizer", *CELL], sort=True)
        .head(1)
        .sort_values([*CELL, "test_mean"], ascending=[True, True, True, False])
        .reset_index(drop=True)
    )


def status_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs that did not end normally, with their status and message."""
    last = final_rows(frame)
    if last.empty:
        return last
    bad = last[~last["status"].isin(OK)]
    return bad[["name", *CELL, "seed", "status", "iteration", "message"]]


def blog_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Final rows of the runs in the post's setting (MNIST, 784-25-10, batch 50,
    100 iterations), one configuration per label."""
    last = final_rows(frame)
    mask = pd.Series(True, index=last.index)
    for key in ("dataset", "hidden", "batch_size"):
        mask &= last[key] == BLOG_SETTING[key]
    last = last[mask]
    return last[last["iteration"] == BLOG_SETTING["max_iter"]]


def is_blog_setting(frame: pd.DataFrame) -> bool:
    """Whether the results hold the post's setting for one of its optimizers."""
    return bool(set(BLOG_TABLE) & set(blog_rows(frame)["label"]))


def blog_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The post's table beside ours: one configuration (label) per row.

    Our seconds are training time without evaluation; the post's included a
    cost on the whole training set after every update, on a 2013 laptop, so
    the two columns are not a speed-up (``benchmarks/blog_workload.py``
    times the post's algorithm on this machine).
    """
    runs = blog_rows(frame)
    rows = []
    labels = [(label, *BLOG_TABLE[label]) for label in BLOG_TABLE] + [
        (label, what, math.nan, math.nan) for label, what in BLOG_EXTRA.items()
    ]
    for label, what, post_seconds, post_accuracy in labels:
        group = runs[runs["label"] == label]
        if group.empty:
            continue
        interval = accuracy_interval(group["val_accuracy"])
        rows.append(
            {
                "optimizer": what,
                "label": label,
                "post_seconds": post_seconds,
                "post_accuracy": post_accuracy,
                "seeds": len(group),
                "accuracy_mean": interval.mean,
                "accuracy_std": group["val_accuracy"].std(ddof=1),
                "accuracy_low": interval.low,
                "accuracy_high": interval.high,
                "accuracy_clipped": interval.clipped,
                "seconds": group["train_seconds"].mean(),
                "cpu_seconds": group["train_cpu_seconds"].mean(),
            }
        )
    return pd.DataFrame(rows)


def same_method_note(frame: pd.DataFrame) -> str:
    """A sentence when the results hold one method under two names."""
    notes = []
    last = final_rows(frame)
    names = set(last["optimizer"])
    for a, b in SAME_METHOD:
        forms = last[last["optimizer"] == a]["options"].map(
            lambda o: json.loads(o).get("form", "blog")
        )
        if a in names and b in names and (forms == "blog").any():
            notes.append(
                f"{a} (its default, the post's look-ahead form) and {b} are the same method: "
                "they take their gradients at the same points, so their differences here "
                "are timing noise and which of the two points is evaluated"
            )
    return "; ".join(notes)


# -- AlgoPerf's performance profile --------------------------------------------------------


# A target: one number for every cell, one per workload (by name; a workload not
# named takes the rule), or None (the rule everywhere).
Target = float | Mapping[str, float] | None
TARGET_RULE = "99% of the best median final validation accuracy of a configuration in the cell"


def cell_targets(frame: pd.DataFrame, target: Target) -> pd.Series:
    """The target of each cell: ``target`` (or its workload's, where it names the
    workload), else :data:`TARGET_RULE`. Validation accuracy only: the test split
    never sets a target."""
    last = final_rows(frame)
    out = {}
    for cell, group in last.groupby(CELL, sort=True):
        given = target.get(cell[0]) if isinstance(target, Mapping) else target
        if given is not None:
            out[cell] = float(given)
        else:
            out[cell] = 0.99 * group.groupby("config_id")["val_accuracy"].median().max()
    return pd.Series(out, dtype=float)


def target_source(target: Target, workload: str) -> str:
    """How a workload's target is set: ``given`` or ``rule``."""
    given = target.get(workload) if isinstance(target, Mapping) else target
    return "rule" if given is None else "given"


def profile_trials(frame: pd.DataFrame, study: str = "seed", trial: str = "name") -> pd.DataFrame:
    """The evaluations in the shape AlgoPerf's scoring reads: submission (an
    optimizer), workload (a cell), study, trial, eval_index, score, times.

    The default mapping (``study="seed"``): a study is a seed, its trial the
    setting that ran on it (a point of an option grid, or a tuned optimizer's
    chosen one). AlgoPerf's external-tuning mapping is ``study="seed",
    trial="trial"`` on a tuned study's trials: a study is a trial seed, its
    trials the sampled settings.
    """
    data = frame.dropna(subset=["iteration"])
    data = data.sort_values(["run_id", "iteration"]).copy()
    data["eval_index"] = data.groupby("run_id").cumcount()
    data["workload"] = cells_of(data)
    data["study_id"] = data[study]
    data["trial_id"] = data[trial]
    data = data.drop(columns=["study", "trial"], errors="ignore")
    data = data.rename(
        columns={
            "optimizer": "submission",
            "study_id": "study",
            "trial_id": "trial",
            "val_accuracy": "score",
        }
    )
    columns = ["submission", "workload", "study", "trial", "eval_index", "score", *TIME_AXES]
    return data[[*columns, "grad_evals", "epoch"]]


@dataclass
class Profile:
    """AlgoPerf's profile of a folder: the times to target (optimizers x cells),
    their ratios to the fastest, rho(tau), the score; and each study's time."""

    times: pd.DataFrame
    ratios: pd.DataFrame
    rho: pd.DataFrame
    score: pd.Series
    study_times: pd.DataFrame
    time_col: str


def performance_profile(
    frame: pd.DataFrame,
    target: Target = None,
    time_col: str = "train_seconds",
    trials: pd.DataFrame | None = None,
) -> Profile:
    """AlgoPerf's performance profile of the optimizers over the grid's cells, and
    its leaderboard score (tau from 1 to 4). ``frame``: the runs that stand for
    the folder (seeds are studies); ``trials``: evaluations already mapped (the
    external-tuning view), else made from ``frame``."""
    if trials is None:
        trials = profile_trials(frame)
    targets = cell_targets(frame, target)
    targets.index = list(targets.index)
    study_times = stats.algoperf_study_times(trials, targets, time_col)
    times = stats.algoperf_times(trials, targets, time_col)
    ratios, rho = stats.algoperf_profile(times)
    return Profile(times, ratios, rho, stats.algoperf_score(rho), study_times, time_col)


# Simulated coverage of the score's bootstrap range with the extended study's own runs
# as the truth, runs that never reach the target included (benchmarks/score_coverage.py,
# results/score-coverage.md; tests/test_score_coverage.py, slow tier, checks the ranges),
# and on a known case where every run reaches it (tests/test_stats.py, slow tier).
SCORE_COVERAGE = (
    "76-92% at 3 seeds per cell, 86-98% at 5 and 91-99% at 10 with the extended study's "
    "own runs as the truth, runs that never reach the target included (its misses fall "
    "below: few seeds score low); 85-93%, 90-98% and 94-97% where every run reaches it"
)
SCORE_COVERAGE_RANGES = {3: (0.68, 0.97), 5: (0.80, 1.0), 10: (0.86, 1.0)}  # with MC error
BOOTSTRAP_RESAMPLES = 2000


def score_uncertainty(profile: Profile, n_boot: int = BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """Each optimizer's score with the 2.5th and 97.5th percentiles of its scores
    over bootstrap resamples of the seeds within each cell, and the share of
    resamples in which its score is above each other optimizer's
    (``beats <name>`` columns)."""
    reps = stats.algoperf_bootstrap(profile.study_times, n_boot=n_boot)
    beats = stats.beats(reps)
    out = pd.DataFrame(
        {
            "score": profile.score,
            "low": reps.quantile(0.025),
            "high": reps.quantile(0.975),
        }
    )
    for other in beats.columns:
        out[f"beats {other}"] = beats[other]
    return out.sort_values("score", ascending=False)


def by_workload(
    frame: pd.DataFrame,
    target: Target,
    time_col: str,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    overall: tuple[pd.DataFrame | None, pd.DataFrame | None] = (None, None),
) -> pd.DataFrame:
    """Each optimizer's standing over all workloads and in each alone: the AlgoPerf
    score with its bootstrap range, its rank (1: best) by that score, and the IQM of
    normalised test accuracy. ``frame``: the runs that stand for the folder.
    Columns optimizer, workload ("all" for every workload), score, low, high, rank,
    iqm, iqm_rank. ``overall``: the score table (:func:`score_uncertainty`) and the
    IQM table (:func:`aggregates`) over all workloads, when already computed."""
    parts = [("all", frame)] + [(w, g) for w, g in frame.groupby("workload", sort=True)]
    rows = []
    for workload, runs in parts:
        evaluated = runs[runs["iteration"].notna()]
        if evaluated.empty:
            continue
        scores, iqm = overall if workload == "all" else (None, None)
        if scores is None:
            scores = score_uncertainty(performance_profile(evaluated, target, time_col), n_boot)
        if iqm is None:
            iqm = aggregates(runs, n_boot=n_boot)[0]
        iqms = dict(zip(iqm["optimizer"], iqm["iqm"])) if not iqm.empty else {}
        for name, row in scores.iterrows():
            rows.append(
                {"optimizer": name, "workload": workload, "score": row["score"],
                 "low": row["low"], "high": row["high"], "iqm": iqms.get(name, math.nan)}
            )  # fmt: skip
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    by = out.groupby("workload", sort=False)
    out["rank"] = by["score"].rank(ascending=False, method="min").astype(int)
    out["iqm_rank"] = by["iqm"].rank(ascending=False, method="min")
    return out


def external_tuning_scores(
    frame: pd.DataFrame, target: float | None, time_col: str
) -> pd.Series | None:
    """Under AlgoPerf's external-tuning mapping (a study is a trial seed, its
    trials the sampled settings, the fastest trial per study), the scores of
    a tuned study's optimizers, from its trial runs; None for a plain grid.
    An optimizer without trials (nothing to search) is mapped by its finals."""
    if "phase" not in frame or not (frame["phase"] == "trial").any():
        return None
    trials = frame[frame["phase"] == "trial"]
    untuned = frame[(frame["phase"] == "final") & ~frame["optimizer"].isin(trials["optimizer"])]
    both = pd.concat([trials, untuned], ignore_index=True)
    mapped = profile_trials(both, study="seed", trial="trial")
    reported = frame[frame["phase"] == "final"]
    return performance_profile(
        reported if not reported.empty else both, target, time_col, trials=mapped
    ).score


def timing_spread(frame: pd.DataFrame) -> pd.DataFrame:
    """How much repeated timings of one setting spread, on each clock.

    Within a configuration every seed does the same work per gradient
    evaluation (the same shapes, the same steps), so the spread of its
    seconds per gradient evaluation over seeds is timing noise. Per
    configuration with 2 seeds or more: ``max / min - 1`` of each clock."""
    last = final_rows(frame)
    last = last[last["status"].isin(OK) & (last["grad_evals"] > 0)]
    rows = []
    for config_id, group in last.groupby("config_id"):
        if len(group) < 2:
            continue
        row = {"config_id": config_id, "name": group["name"].iloc[0]}
        for col in TIME_AXES:
            per = group[col] / group["grad_evals"]
            row[col] = float(per.max() / per.min() - 1) if per.min() > 0 else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["config_id", "name", *TIME_AXES])


def ties_with_fastest(times: pd.DataFrame, spread: float) -> pd.DataFrame:
    """Per cell, True where an optimizer's time to target is within ``spread`` of
    the fastest (it cannot be ranked behind it: timing noise is that large)."""
    best = times.min(axis=0)
    return times.le(best * (1 + spread), axis=1) & np.isfinite(times)


# -- aggregates over cells (rliable) ---------------------------------------------------------

# Simulated coverage of the aggregates' bootstrap intervals on a known case
# (tests/test_stats.py, slow tier): 6 cells, normal runs.
AGGREGATE_COVERAGE = (
    "interquartile mean: about 87% at 3 seeds per cell, 88% at 5, 93% at 10; probability "
    "of improvement: about 92%, 95%, 97%"
)


def chance_level(dataset: str, data_options: str | dict | None = None) -> float:
    """The accuracy of guessing one class: ``1 / n_classes`` of the dataset (the
    registry's shape for these options); 0 where the class count is unknown
    without loading the data."""
    from nnbench.data import registry

    options = json.loads(data_options) if isinstance(data_options, str) else data_options or {}
    try:
        shape = registry.get(str(dataset)).shape_of(options)
    except Exception:  # an unknown or changed dataset: no chance level to offer
        return 0.0
    return 1.0 / shape[1] if shape else 0.0


# rliable normalises by fixed reference scores; an accuracy's are chance and perfection
NORMALISATION = "(accuracy - chance) / (1 - chance), chance = 1 / the number of classes"


def normalised_scores(frame: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Each run's final ``metric`` normalised by fixed reference scores, as rliable
    does: chance (0) and a perfect score (1), :data:`NORMALISATION`; they do not
    depend on which optimizers are compared, so one unit is the same number of
    examples in every cell. Columns optimizer, cell, seed, score."""
    last = final_rows(frame)
    last = last[last["status"].isin(OK)].dropna(subset=[metric])
    if last.empty:
        return pd.DataFrame(columns=["optimizer", "cell", "seed", "score"])
    options = last["data_options"] if "data_options" in last else pd.Series([None] * len(last))
    datasets = last["dataset"] if "dataset" in last else pd.Series(["mnist"] * len(last))
    chance = np.array(
        [chance_level(d, o) for d, o in zip(datasets.astype(str), options.astype(object))]
    )
    out = last[["optimizer", "seed"]].copy()
    out["cell"] = cells_of(last)
    out["score"] = (last[metric].to_numpy(dtype=float) - chance) / (1.0 - chance)
    return out[["optimizer", "cell", "seed", "score"]].reset_index(drop=True)


def _by_cell(scores: pd.DataFrame) -> dict:
    return {
        cell: {opt: g["score"].to_numpy() for opt, g in group.groupby("optimizer")}
        for cell, group in scores.groupby("cell", sort=True)
    }


def aggregates(
    frame: pd.DataFrame, metric: str = "test_accuracy", n_boot: int = BOOTSTRAP_RESAMPLES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Over all cells: each optimizer's interquartile mean of normalised scores
    with its stratified bootstrap interval, and the probability of improvement
    of each optimizer over each other (``P(X > Y)`` averaged over cells) with
    its interval. Only cells where every optimizer has runs count."""
    scores = normalised_scores(frame, metric)
    if scores.empty:
        return pd.DataFrame(), pd.DataFrame()
    tasks = _by_cell(scores)
    names = sorted(scores["optimizer"].unique())
    tasks = {c: runs for c, runs in tasks.items() if set(runs) == set(names)}
    if not tasks or len(names) < 2:  # nothing to compare
        return pd.DataFrame(), pd.DataFrame()
    resampled = stratified_resamples(tasks, n_boot)
    iqm_rows = []
    for name in names:
        reps = stats.iqm_rows(np.hstack([resampled[c][name] for c in tasks]))
        iqm_rows.append(
            {
                "optimizer": name,
                "iqm": stats.iqm(np.concatenate([tasks[c][name] for c in tasks])),
                "low": float(np.percentile(reps, 2.5)),
                "high": float(np.percentile(reps, 97.5)),
            }
        )
    pi_rows = []
    for x, y in itertools.permutations(names, 2):
        reps = np.mean(
            [stats.improvement_rows(resampled[c][x], resampled[c][y]) for c in tasks], axis=0
        )
        point = np.mean([stats.probability_of_improvement(tasks[c][x], tasks[c][y]) for c in tasks])
        pi_rows.append(
            {
                "x": x,
                "y": y,
                "p": float(point),
                "low": float(np.percentile(reps, 2.5)),
                "high": float(np.percentile(reps, 97.5)),
            }
        )
    iqm_table = pd.DataFrame(iqm_rows).sort_values("iqm", ascending=False, ignore_index=True)
    return iqm_table, pd.DataFrame(pi_rows)


# -- which optimizer ends higher ----------------------------------------------------------------


def paired_finals(frame: pd.DataFrame, metric: str) -> tuple[dict[tuple, dict], int]:
    """Per (optimizer, cell): ``metric`` by seed, for one configuration each
    (the best on validation where an optimizer has several in a cell), and how
    many runs had no value (failed before their first evaluation). A run that
    diverged keeps its final value: it counts against its optimizer."""
    last = final_rows(frame)
    missing = int(last[metric].isna().sum())
    last = last.dropna(subset=[metric])
    if last.empty:
        return {}, missing
    means = last.groupby(["optimizer", *CELL, "config_id"], sort=True)["val_accuracy"].mean()
    best = (
        means.reset_index()
        .sort_values(["val_accuracy", "config_id"], ascending=[False, True], kind="stable")
        .groupby(["optimizer", *CELL], sort=True)
        .head(1)
    )
    last = last[last["config_id"].isin(best["config_id"])]
    finals = {
        (opt, tuple(cell)): dict(zip(group["seed"].tolist(), group[metric].tolist()))
        for (opt, *cell), group in last.groupby(["optimizer", *CELL], sort=True)
    }
    return finals, missing


# Simulated in tests/test_report.py (slow tier): 8 equal optimizers, 6 cells, values in
# steps of 1e-4, cells of a seed correlated as the design makes them.
PAIRWISE_FWER = (
    "at most 5% over both tables together, whatever the dependence between a seed's "
    "cells (simulated with 8 equal optimizers in 6 cells, accuracies in steps of one "
    "image, a seed's cells correlated 0 to 0.9: at most 3.8%, tests/test_report.py)"
)
PAIRWISE_FWER_ONE_CELL = (
    "at most 5% (Holm's method holds it whatever the dependence between the pairs; the "
    "floored t-test's level with accuracies in steps of one image is simulated in "
    "tests/test_stats.py)"
)


def pairwise_verdicts(
    frame: pd.DataFrame, metric: str = "test_accuracy", alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Which optimizer ends higher on ``metric``, by tests whose errors are controlled.

    Runs of two optimizers with the same seed in the same cell start from the
    same weights and see the same minibatch order: they are paired, and
    ``b - a`` is one difference. Returns the study-wide table, the per-cell
    one and the number of runs left out for having no value; see
    :func:`verdicts_of` for the tests.
    """
    finals, missing = paired_finals(frame, metric)
    study, per_cell = verdicts_of(finals, alpha)
    return study, per_cell, missing


def verdicts_of(
    finals: dict[tuple[str, tuple], dict[int, float]], alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairwise verdicts of ``{(optimizer, cell): {seed: value}}``.

    - Over the study (more than one cell): per pair of optimizers, each seed's
      differences averaged over the cells both ran with it, and one test over
      the seeds. The seed is the unit the design makes independent: one seed's
      cells share their minibatch order, and a network's batch sizes its start
      weights, so differences in a seed's cells may be correlated, and a test
      that took them as independent would err more often than it says. The
      estimand: the mean over the cells of the mean paired difference.
    - Per cell: the same test over the cell's seeds.

    The test (:func:`stats.location_test`): the exact sign-flip test where its
    smallest p-value can reach the level Holm's first step asks, else the
    paired t-test with its spread floored at the metric's step (one example),
    whose error rate for values in steps is simulated in
    ``tests/test_stats.py``. Holm's correction within each table; with more
    than one cell, ``alpha / 2`` to each table (at most ``alpha`` over both),
    with one cell the study is the cell and has all of ``alpha``. Columns: a,
    b, (cell | cells), n (seeds), mean, low, high (its 95% floored t
    interval), seeds_higher, seeds_lower, (cells_higher, cells_lower), test,
    p, p_holm, verdict (the optimizer that ends higher, or "").
    """
    names = sorted({opt for opt, _ in finals})
    cells = sorted({cell for _, cell in finals}, key=lambda c: tuple(map(str, c)))
    step = stats.value_step([v for runs in finals.values() for v in runs.values()])
    pairs = list(itertools.combinations(names, 2))
    per_cell: list[dict] = []
    study: list[dict] = []
    for a, b in pairs:
        by_seed: dict[int, list[float]] = {}
        cell_means = []
        for cell in cells:
            va, vb = finals.get((a, cell)), finals.get((b, cell))
            if va is None or vb is None:
                continue
            seeds = sorted(va.keys() & vb.keys())
            if not seeds:
                continue
            d = np.array([vb[x] - va[x] for x in seeds], dtype=float)
            cell_means.append(float(d.mean()))
            per_cell.append({"a": a, "b": b, "cell": cell, **_differences(d)})
            for x, diff in zip(seeds, d):
                by_seed.setdefault(x, []).append(float(diff))
        if by_seed:
            d = np.array([np.mean(v) for _, v in sorted(by_seed.items())])
            study.append({"a": a, "b": b, "cells": len(cell_means), **_differences(d),
                          "cells_higher": sum(m > 0 for m in cell_means),
                          "cells_lower": sum(m < 0 for m in cell_means)})  # fmt: skip
    if len(cells) < 2:  # the study is its one cell: no second family to split alpha into
        return _holm_verdicts(study, alpha, step), pd.DataFrame()
    return _holm_verdicts(study, alpha / 2, step), _holm_verdicts(per_cell, alpha / 2, step)


def _differences(d: np.ndarray) -> dict:
    return {"n": len(d), "mean": float(d.mean()), "seeds_higher": int((d > 0).sum()),
            "seeds_lower": int((d < 0).sum()), "d": d}  # fmt: skip


def _holm_verdicts(rows: list[dict], alpha: float, step: float) -> pd.DataFrame:
    """Each row's test at the level Holm's first step asks of the family, its 95%
    interval, Holm's adjustment and verdict."""
    if not rows:
        return pd.DataFrame()
    level = alpha / len(rows)
    for row in rows:
        d = row.pop("d")
        row["p"], row["test"] = stats.location_test(d, step, level)
        t = stats.floored_t(d, step)
        row["low"], row["high"] = (t.low, t.high) if t is not None else (math.nan, math.nan)
    table = pd.DataFrame(rows)
    table["p_holm"] = stats.holm(table["p"].to_numpy())
    significant = (table["p_holm"] < alpha) & (table["mean"] != 0)
    table["verdict"] = np.where(
        significant, np.where(table["mean"] > 0, table["b"], table["a"]), ""
    )
    return table


# -- tuning -----------------------------------------------------------------------------------


def trial_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per tuning trial: its options and its mean final validation accuracy."""
    last = final_rows(frame)
    if "phase" not in last:
        return pd.DataFrame()
    trials = last[last["phase"] == "trial"]
    if trials.empty:
        return pd.DataFrame()
    trials = trials.assign(val_accuracy=trials["val_accuracy"].fillna(0.0))  # failed: 0
    out = (
        trials.groupby(["optimizer", *CELL, "trial", "name", "options"], sort=True)
        .agg(val_mean=("val_accuracy", "mean"), seeds=("seed", "size"))
        .reset_index()
    )
    return out


def tuning_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Expected best validation accuracy after k trials, per optimizer and cell
    (Dodge et al. 2019), from the trials' mean validation accuracies."""
    trials = trial_table(frame)
    if trials.empty:
        return pd.DataFrame()
    parts = []
    for (opt, workload, hidden, batch), group in trials.groupby(["optimizer", *CELL], sort=True):
        curve = stats.expected_max(group["val_mean"].fillna(0.0))
        curve.insert(0, "batch_size", batch)
        curve.insert(0, "hidden", hidden)
        curve.insert(0, "workload", workload)
        curve.insert(0, "optimizer", opt)
        parts.append(curve)
    return pd.concat(parts, ignore_index=True)


def chosen_settings(frame: pd.DataFrame, chosen: list[dict] | None) -> pd.DataFrame:
    """The setting the protocol chose per optimizer and cell (``tune.json``), with
    its edge flags and its final runs' accuracies (``frame``: the current finals,
    :func:`nnbench.tune.reported`)."""
    if not chosen:
        return pd.DataFrame()
    last = final_rows(frame)
    finals = last[last["phase"] == "final"] if not last.empty else last
    rows = []
    for c in chosen:
        hidden = "-".join(map(str, c["hidden"])) or "none"
        batch = batch_number(c["batch_size"])
        workload = c.get("workload")  # None: a choice made before studies had workloads
        final = (
            finals[
                (finals["optimizer"] == c["optimizer"])
                & ((finals["workload"] == workload) if workload else True)
                & (finals["hidden"] == hidden)
                & (finals["batch_size"] == batch)
            ]
            if not finals.empty
            else finals
        )
        test = accuracy_interval(final["test_accuracy"]) if not final.empty else None
        searched = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c["searched"].items()
        )
        rows.append(
            {
                "optimizer": c["optimizer"],
                "workload": workload or (final["workload"].iloc[0] if len(final) else ""),
                "hidden": hidden,
                "batch_size": batch,
                "chosen": searched or "(nothing searched)",
                "trial val acc": c["val_accuracy"] if c["val_accuracy"] is not None else math.nan,
                "final seeds": len(final),
                "final val acc": final["val_accuracy"].mean() if len(final) else math.nan,
                "final test acc": test.mean if test else math.nan,
                "test low": test.low if test else math.nan,
                "test high": test.high if test else math.nan,
                "test clipped": test.clipped if test else False,
                "edge": ", ".join(f"edge: {k}" for k in c["edge"]),
            }
        )
    return pd.DataFrame(rows)


def searched_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The trials' option values, one column per option, with the mean final
    validation accuracy: what the sensitivity figure plots."""
    trials = trial_table(frame)
    if trials.empty:
        return trials
    # a list, not Series.map: pandas 3 maps a categorical column's categories and refuses
    # the dicts they become
    options = pd.json_normalize([json.loads(str(o)) for o in trials["options"]])
    return pd.concat([trials.reset_index(drop=True), options], axis=1)
