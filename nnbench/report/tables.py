"""The report's tables, as DataFrames computed from the long results table.

A *configuration* is everything but the seed (its ``config_id``); a *cell*
is one problem of the grid, an architecture x batch size. Hyperparameters
are chosen on validation accuracy; test accuracy is reported for the chosen
ones and never used to choose.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from nnbench import stats
from nnbench.results import batch_number, final_rows
from nnbench.status import Status

CELL = ["hidden", "batch_size"]
CONFIG = ["config_id", "label", "optimizer", *CELL]
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


def with_time_to_target(frame: pd.DataFrame, target: float | pd.Series) -> pd.DataFrame:
    """One row per run: ``reached``, and the interpolated training seconds,
    gradient evaluations and epochs at which it first reached ``target``
    (a number, or a Series by cell ``(hidden, batch_size)``)."""
    rows = []
    for run_id, run in frame.dropna(subset=["iteration"]).groupby("run_id", sort=False):
        run = run.sort_values("iteration")
        tgt = target
        if isinstance(target, pd.Series):
            tgt = target.get((run["hidden"].iloc[0], run["batch_size"].iloc[0]), math.nan)
        row = {"run_id": run_id}
        for axis in ("train_seconds", "grad_evals", "epoch"):
            value, index = stats.time_to_target(run[axis], run["val_accuracy"], tgt)
            row[f"{axis}_to_target"] = value
        row["reached"] = index >= 0
        rows.append(row)
    columns = [
        "run_id",
        "reached",
        "train_seconds_to_target",
        "grad_evals_to_target",
        "epoch_to_target",
    ]
    return pd.DataFrame(rows, columns=columns)


def summary_table(frame: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """Per configuration, over its seeds.

    Final validation and test accuracy: mean and 95% percentile-bootstrap
    interval over seeds (``*_low``, ``*_high``); training seconds; with
    ``target``, the median interpolated seconds and gradient evaluations to
    reach it over the seeds that did, and how many did.
    """
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame()
    if target is not None:
        last = last.merge(with_time_to_target(frame, target), on="run_id", how="left")
    out = []
    last = last.sort_values(["label", "hidden", "batch_size"], kind="stable")
    for key, group in last.groupby(CONFIG, sort=False, dropna=False):
        row = dict(zip(CONFIG, key))
        row["phase"] = group["phase"].iloc[0] if "phase" in group else "grid"
        row["seeds"] = len(group)
        row["ok"] = int(group["status"].isin(OK).sum())
        for split in ("val", "test"):
            values = group[f"{split}_accuracy"]
            row[f"{split}_mean"] = values.mean()
            row[f"{split}_std"] = values.std(ddof=1)
            row[f"{split}_low"], row[f"{split}_high"] = stats.bootstrap_interval(values)
        row["train_seconds"] = group["train_seconds"].mean()
        row["total_seconds"] = group["train_seconds"].sum()
        if target is not None:
            reached = group[group["reached"].fillna(False).astype(bool)]
            row["reached"] = len(reached)
            row["seconds_to_target"] = reached["train_seconds_to_target"].median()
            row["grad_evals_to_target"] = reached["grad_evals_to_target"].median()
        out.append(row)
    return pd.DataFrame(out)


def best_settings(summary: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and cell, the configuration with the best mean validation accuracy."""
    if summary.empty:
        return summary
    ranked = summary.sort_values(["val_mean", "label"], ascending=[False, True])
    return (
        ranked.groupby(["optimizer", *CELL], sort=True)
        .head(1)
        .sort_values([*CELL, "test_mean"], ascending=[True, True, False])
        .reset_index(drop=True)
    )


def status_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs that did not end normally, with their status and message."""
    last = final_rows(frame)
    if last.empty:
        return last
    bad = last[~last["status"].isin(OK)]
    return bad[["label", "hidden", "batch_size", "seed", "status", "iteration", "message"]]


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
        low, high = stats.bootstrap_interval(group["val_accuracy"])
        rows.append(
            {
                "optimizer": what,
                "label": label,
                "post_seconds": post_seconds,
                "post_accuracy": post_accuracy,
                "seeds": len(group),
                "accuracy_mean": group["val_accuracy"].mean(),
                "accuracy_std": group["val_accuracy"].std(ddof=1),
                "accuracy_low": low,
                "accuracy_high": high,
                "seconds": group["train_seconds"].mean(),
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


def profiled(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs a performance profile is computed on: a tuned study's final runs
    (the tuned optimizers, on seeds the choice never saw), else every run."""
    finals = frame["phase"] == "final"
    return frame[finals] if finals.any() else frame[frame["phase"] != "trial"]


def cell_targets(frame: pd.DataFrame, target: float | None) -> pd.Series:
    """The target of each cell: ``target``, or 99% of the best median final
    validation accuracy of a configuration in the cell."""
    last = final_rows(profiled(frame))
    out = {}
    for cell, group in last.groupby(CELL, sort=True):
        if target is not None:
            out[cell] = target
        else:
            out[cell] = 0.99 * group.groupby("config_id")["val_accuracy"].median().max()
    return pd.Series(out, dtype=float)


def profile_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """The evaluations in the shape AlgoPerf's scoring reads: submission (an
    optimizer), workload (a cell), study (a seed), trial (a setting: a point of
    an option grid, or a tuned optimizer's chosen one), eval_index, score, times."""
    data = profiled(frame.dropna(subset=["iteration"]))
    data = data.sort_values(["run_id", "iteration"]).copy()
    data["eval_index"] = data.groupby("run_id").cumcount()
    data["workload"] = list(zip(data["hidden"], data["batch_size"]))
    data["trial"] = data["label"]
    data = data.rename(
        columns={"optimizer": "submission", "seed": "study", "val_accuracy": "score"}
    )
    columns = [
        "submission",
        "workload",
        "study",
        "trial",
        "eval_index",
        "score",
        "train_seconds",
        "grad_evals",
        "epoch",
    ]
    return data[columns]


def performance_profile(
    frame: pd.DataFrame, target: float | None = None, time_col: str = "train_seconds"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """AlgoPerf's performance profile of the optimizers over the grid's cells.

    Returns the times to target (optimizers x cells), their ratios to the
    fastest, rho(tau), and AlgoPerf's score per optimizer.
    """
    trials = profile_trials(frame)
    targets = cell_targets(frame, target)
    targets.index = list(targets.index)
    times = stats.algoperf_times(trials, targets, time_col)
    ratios, rho = stats.algoperf_profile(times)
    return times, ratios, rho, stats.algoperf_score(rho)


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
        trials.groupby(["optimizer", *CELL, "trial", "label", "options"], sort=True)
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
    for (opt, hidden, batch), group in trials.groupby(["optimizer", *CELL], sort=True):
        curve = stats.expected_max(group["val_mean"].fillna(0.0))
        curve.insert(0, "batch_size", batch)
        curve.insert(0, "hidden", hidden)
        curve.insert(0, "optimizer", opt)
        parts.append(curve)
    return pd.concat(parts, ignore_index=True)


def chosen_settings(frame: pd.DataFrame, chosen: list[dict] | None) -> pd.DataFrame:
    """The setting the protocol chose per optimizer and cell (``tune.json``), with
    its edge flags and its final runs' accuracies."""
    if not chosen:
        return pd.DataFrame()
    last = final_rows(frame)
    finals = last[last["phase"] == "final"]
    rows = []
    for c in chosen:
        hidden = "-".join(map(str, c["hidden"])) or "none"
        batch = batch_number(c["batch_size"])
        final = finals[
            (finals["optimizer"] == c["optimizer"])
            & (finals["hidden"] == hidden)
            & (finals["batch_size"] == batch)
        ]
        low, high = stats.bootstrap_interval(final["test_accuracy"])
        searched = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c["searched"].items()
        )
        rows.append(
            {
                "optimizer": c["optimizer"],
                "hidden": hidden,
                "batch_size": batch,
                "chosen": searched or "(nothing searched)",
                "trial val acc": c["val_accuracy"] if c["val_accuracy"] is not None else math.nan,
                "final seeds": len(final),
                "final val acc": final["val_accuracy"].mean(),
                "final test acc": final["test_accuracy"].mean(),
                "test low": low,
                "test high": high,
                "edge": ", ".join(f"edge: {k}" for k in c["edge"]),
            }
        )
    return pd.DataFrame(rows)


def _default(optimizer: str, key: str) -> object:
    from nnbench import optimizers

    try:
        return optimizers.get(optimizer).options[key].default
    except Exception:  # a plugin not installed here: no default known
        return None


def searched_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The trials' option values, one column per option, with the mean final
    validation accuracy: what the sensitivity figure plots."""
    trials = trial_table(frame)
    if trials.empty:
        return trials
    options = pd.json_normalize(trials["options"].map(json.loads).tolist())
    return pd.concat([trials.reset_index(drop=True), options], axis=1)
