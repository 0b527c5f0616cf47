"""Tables and figures from a results folder, and the Markdown/HTML report.

Every figure function takes the long results table (``results.load``) and
returns a matplotlib ``Figure``; nothing here calls ``plt.show()``. Each
optimizer keeps one colour in every figure (by its name, in a fixed order),
and failed, diverged and interrupted runs are counted and listed, never
silently dropped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from nnbench import results
from nnbench.errors import NnbenchError
from nnbench.results import final_rows

CELL = ["hidden", "batch_size"]  # one "problem" of the grid: an architecture x batch size
CONFIG = ["label", "optimizer", *CELL]
OK_STATUSES = ("completed", "converged", "stopped")

# The post's table: time in seconds and validation accuracy after 100 iterations.
BLOG_TABLE = {
    "gd": ("GD (learning rate 0.3)", 284.0, 0.8316),
    "rmsprop_blog": ("RMSPROP as published (decay 0.9)", 297.0, 0.1863),
    "cg": ("CG (mb_maxiter 10)", 314.0, 0.8607),
}

# A fixed order of optimizer names, so that a name gets the same colour in
# every report; names not listed (plugins) follow, sorted.
COLOUR_ORDER = (
    "gd",
    "momentum",
    "rmsprop_blog",
    "rmsprop",
    "cg",
    "lbfgsb",
    "nesterov",
    "adagrad",
    "adam",
)


def colours(names: Sequence[str]) -> dict[str, Any]:
    """One colour per optimizer name, stable across figures and reports."""
    palette = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
    ordered = list(COLOUR_ORDER) + sorted(set(names) - set(COLOUR_ORDER))
    return {name: palette[i % len(palette)] for i, name in enumerate(ordered)}


# -- tables ------------------------------------------------------------------------


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% confidence interval of the mean (Student's t)."""
    values = values.dropna()
    n = len(values)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def time_to_target(frame: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run, the first evaluation reaching ``target`` validation accuracy.

    Columns: ``run_id``, ``reached`` and, for runs that reached it, the
    training seconds, gradient evaluations and epochs it took (``*_to_target``).
    """
    rows = []
    for run_id, run in frame.groupby("run_id", sort=False):
        hit = run[run["val_accuracy"] >= target].sort_values("iteration")
        first = hit.iloc[0] if len(hit) else None
        rows.append(
            {
                "run_id": run_id,
                "reached": first is not None,
                "seconds_to_target": first["train_seconds"] if first is not None else np.nan,
                "grad_evals_to_target": first["grad_evals"] if first is not None else np.nan,
                "epochs_to_target": first["epoch"] if first is not None else np.nan,
            }
        )
    columns = ["run_id", "reached", "seconds_to_target", "grad_evals_to_target", "epochs_to_target"]
    return pd.DataFrame(rows, columns=columns)


def summary_table(frame: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """Per (optimizer setting, architecture, batch size), over seeds.

    Final validation and test accuracy (mean, standard deviation, 95% CI
    half-width), training seconds, and with ``target`` the median seconds and
    gradient evaluations to reach it over the seeds that did, and how many did.
    """
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame()
    if target is not None:
        ttt = time_to_target(frame, target).set_index("run_id")
        last = last.join(ttt, on="run_id")
    out = []
    for key, group in last.groupby(CONFIG, sort=True):
        ok = group[group["status"].isin(OK_STATUSES)]
        row = dict(zip(CONFIG, key))
        row.update(
            {
                "seeds": len(group),
                "ok": len(ok),
                "val_mean": group["val_accuracy"].mean(),
                "val_std": group["val_accuracy"].std(ddof=1),
                "val_ci95": ci95(group["val_accuracy"]),
                "test_mean": group["test_accuracy"].mean(),
                "test_std": group["test_accuracy"].std(ddof=1),
                "test_ci95": ci95(group["test_accuracy"]),
                "train_seconds": group["train_seconds"].mean(),
                "total_seconds": group["train_seconds"].sum(),
            }
        )
        if target is not None:
            reached = group[group["reached"].astype(bool)]
            row["reached"] = len(reached)
            row["seconds_to_target"] = reached["seconds_to_target"].median()
            row["grad_evals_to_target"] = reached["grad_evals_to_target"].median()
        out.append(row)
    return pd.DataFrame(out)


def best_settings(summary: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and cell, the setting with the best mean validation accuracy.

    Hyperparameters are chosen on validation; the test accuracy is then the
    honest number to report.
    """
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
    """Runs that did not complete normally, with their status and message."""
    last = final_rows(frame)
    if last.empty:
        return last
    bad = last[~last["status"].isin(OK_STATUSES)]
    return bad[["label", "hidden", "batch_size", "seed", "status", "iteration", "message"]]


def is_blog_setting(frame: pd.DataFrame) -> bool:
    """Whether the results are (a superset of) the post's setting."""
    last = final_rows(frame)
    blog = last[
        (last["dataset"] == "mnist")
        & (last["hidden"] == "25")
        & (last["batch_size"] == 50)
        & (last["iteration"] == 100)
    ]
    return bool(set(BLOG_TABLE) & set(blog["optimizer"]))


def blog_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The post's table beside ours: time, accuracy, and our time as a fraction of theirs."""
    last = final_rows(frame)
    last = last[
        (last["dataset"] == "mnist") & (last["hidden"] == "25") & (last["batch_size"] == 50)
    ]
    rows = []
    for name, (what, post_time, post_acc) in BLOG_TABLE.items():
        runs = last[last["optimizer"] == name]
        if runs.empty:
            continue
        ours_time = runs["train_seconds"].mean()
        rows.append(
            {
                "optimizer": what,
                "post_seconds": post_time,
                "post_accuracy": post_acc,
                "seeds": len(runs),
                "accuracy_mean": runs["val_accuracy"].mean(),
                "accuracy_std": runs["val_accuracy"].std(ddof=1),
                "seconds": ours_time,
                "time_fraction": ours_time / post_time,
            }
        )
    return pd.DataFrame(rows)


# -- figures -----------------------------------------------------------------------


def _cells(frame: pd.DataFrame) -> list[tuple[str, float]]:
    """(hidden, batch size) pairs, smaller and shallower networks first."""

    def order(cell: tuple[str, float]) -> tuple:
        sizes = [int(u) for u in cell[0].split("-") if u.isdigit()]
        return len(sizes), sizes, cell[1]

    return sorted({(h, b) for h, b in zip(frame["hidden"], frame["batch_size"])}, key=order)


def _grid(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    width = max(width, 8.0 / cols)  # room for the title and legend with a single panel
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _batch_text(batch: float) -> str:
    return f"{int(batch)}" if batch >= 1 else f"{batch:g} of the rows"


X_LABELS = {
    "train_seconds": "training seconds",
    "epoch": "epochs",
    "grad_evals": "gradient evaluations",
    "iteration": "iterations",
}
Y_LABELS = {
    "val_accuracy": "validation accuracy",
    "train_cost": "training cost",
    "test_accuracy": "test accuracy",
    "val_cost": "validation cost",
}


def convergence_figure(
    frame: pd.DataFrame,
    x: str = "epoch",
    y: str = "val_accuracy",
    labels: Sequence[str] | None = None,
) -> Figure:
    """``y`` against ``x``: the median over seeds, with a band from the lowest
    to the highest seed; one panel per architecture x batch size.

    Runs of one setting evaluate at the same iterations, so seeds are aligned
    by evaluation index; the x position is the median over seeds too.
    """
    data = frame.dropna(subset=["iteration"])
    if labels is not None:
        data = data[data["label"].isin(labels)]
    cells = _cells(data)
    if not cells:
        raise NnbenchError("no evaluated runs to plot")
    palette = colours(data["optimizer"].unique())
    fig, axes = _grid(len(cells))
    for ax, (hidden, batch) in zip(axes.flat, cells):
        cell = data[(data["hidden"] == hidden) & (data["batch_size"] == batch)].copy()
        cell["point"] = cell.groupby("run_id").cumcount()
        styles = {}
        for label, runs in cell.groupby("label", sort=True):
            opt = runs["optimizer"].iloc[0]
            styles.setdefault(opt, iter(["-", "--", ":", "-."] * 10))
            agg = runs.groupby("point").agg(
                x=(x, "median"), y=(y, "median"), lo=(y, "min"), hi=(y, "max"), n=(y, "size")
            )
            ax.plot(
                agg["x"],
                agg["y"],
                next(styles[opt]),
                color=palette[opt],
                label=label,
                linewidth=1.6,
            )
            ax.fill_between(
                agg["x"], agg["lo"], agg["hi"], color=palette[opt], alpha=0.15, linewidth=0
            )
        ax.set_title(f"hidden {hidden}, batch {_batch_text(batch)}", fontsize=10)
        ax.set_xlabel(X_LABELS.get(x, x))
        ax.set_ylabel(Y_LABELS.get(y, y))
        if x == "grad_evals" or (x == "train_seconds" and cell[x].max() > 0):
            ax.set_xscale(
                "symlog",
                linthresh=max(cell[x][cell[x] > 0].min(), 1e-3) if (cell[x] > 0).any() else 1.0,
            )
        if y.endswith("cost"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.suptitle(
        f"{Y_LABELS.get(y, y)} against {X_LABELS.get(x, x)}\n"
        "(median over seeds; band: lowest to highest seed)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.legend(
        handles,
        names,
        loc="upper center",
        ncol=2,
        fontsize=7.5,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    return fig


def accuracy_distribution_figure(
    frame: pd.DataFrame, labels: Sequence[str] | None = None, column: str = "val_accuracy"
) -> Figure:
    """Final accuracy of every seed, per optimizer setting; one panel per cell."""
    last = final_rows(frame)
    if labels is not None:
        last = last[last["label"].isin(labels)]
    cells = _cells(last)
    if not cells:
        raise NnbenchError("no runs to plot")
    palette = colours(last["optimizer"].unique())
    fig, axes = _grid(len(cells), width=5.5, height=0.5 + 0.42 * last["label"].nunique())
    rng = np.random.default_rng(0)  # jitter only
    for ax, (hidden, batch) in zip(axes.flat, cells):
        cell = last[(last["hidden"] == hidden) & (last["batch_size"] == batch)]
        order = sorted(cell["label"].unique())
        for i, label in enumerate(order):
            runs = cell[cell["label"] == label]
            vals = runs[column].to_numpy(dtype=float)
            colour = palette[runs["optimizer"].iloc[0]]
            ok = runs["status"].isin(OK_STATUSES).to_numpy()
            jitter = rng.uniform(-0.15, 0.15, size=len(vals))
            ax.scatter(vals[ok], i + jitter[ok], color=colour, s=22, zorder=3)
            ax.scatter(vals[~ok], i + jitter[~ok], color=colour, marker="x", s=30, zorder=3)
            if np.isfinite(vals).any():
                ax.plot([np.nanmedian(vals)] * 2, [i - 0.3, i + 0.3], color="black", lw=1.2)
            n_missing = int(np.isnan(vals).sum())
            if n_missing:
                ax.annotate(
                    f"{n_missing} failed",
                    (0.01, i),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    color="firebrick",
                    va="center",
                )
        ax.set_yticks(range(len(order)), order, fontsize=7)
        ax.set_xlabel(f"final {Y_LABELS.get(column, column)} (x: not completed)")
        ax.set_title(f"hidden {hidden}, batch {_batch_text(batch)}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("final accuracy over seeds (bar: median)", fontsize=11)
    fig.tight_layout()
    return fig


def performance_profiles(
    frame: pd.DataFrame, target: float | None = None, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Time-to-target ratios per (setting, cell), as MLCommons AlgoPerf defines them.

    The time of a setting on a cell is the median training seconds to reach
    the target over its seeds, infinite when fewer than half the seeds reach
    it. Its ratio is that time over the best setting's time on the cell.
    ``target``: an absolute validation accuracy; None takes, per cell, 99% of
    the best median final validation accuracy, so every cell has a target
    some setting reaches.
    """
    last = final_rows(frame)
    if labels is not None:
        frame = frame[frame["label"].isin(labels)]
        last = last[last["label"].isin(labels)]
    rows = []
    for (hidden, batch), cell in last.groupby(CELL, sort=True):
        cell_target = target
        if cell_target is None:
            best = cell.groupby("label")["val_accuracy"].median().max()
            cell_target = 0.99 * best
        runs = frame[(frame["hidden"] == hidden) & (frame["batch_size"] == batch)]
        ttt = time_to_target(runs, cell_target).merge(
            last[["run_id", "label", "optimizer"]], on="run_id"
        )
        for label, group in ttt.groupby("label"):
            reached = group["reached"].sum()
            t = (
                group.loc[group["reached"], "seconds_to_target"].median()
                if reached * 2 >= len(group)
                else np.inf
            )
            rows.append(
                {
                    "label": label,
                    "optimizer": group["optimizer"].iloc[0],
                    "hidden": hidden,
                    "batch_size": batch,
                    "target": cell_target,
                    "seconds": t,
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    best = out.groupby(CELL)["seconds"].transform("min")
    out["ratio"] = np.where(np.isfinite(out["seconds"]), out["seconds"] / best, np.inf)
    return out


def performance_profile_figure(
    frame: pd.DataFrame,
    target: float | None = None,
    labels: Sequence[str] | None = None,
    tau_max: float = 10.0,
) -> Figure:
    """The fraction of cells on which each setting is within a factor tau of the best."""
    prof = performance_profiles(frame, target, labels)
    if prof.empty:
        raise NnbenchError("no runs for a performance profile")
    palette = colours(prof["optimizer"].unique())
    n_cells = prof.groupby(CELL).ngroups
    taus = np.logspace(0, np.log10(tau_max), 400)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles: dict[str, Any] = {}
    for label, group in prof.groupby("label", sort=True):
        ratios = group["ratio"].to_numpy()
        rho = [(ratios <= tau).sum() / n_cells for tau in taus]
        opt = group["optimizer"].iloc[0]
        styles.setdefault(opt, iter(["-", "--", ":", "-."] * 10))
        ax.step(taus, rho, next(styles[opt]), where="post", color=palette[opt], label=label)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau: time to target / best time to target on the cell")
    ax.set_ylabel("fraction of cells")
    what = (
        f"validation accuracy {target:g}"
        if target is not None
        else "99% of the cell's best final validation accuracy"
    )
    ax.set_title(f"performance profile over {n_cells} cell(s); target {what}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# -- the report --------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}g}"
    return str(value)


def _markdown(table: pd.DataFrame, digits: int = 4) -> str:
    if table.empty:
        return "(none)\n"
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = [
        "| " + " | ".join(_fmt(v, digits).replace("|", "\\|") for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body]) + "\n"


def _html_table(table: pd.DataFrame, digits: int = 4) -> str:
    if table.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v, digits))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_view(summary: pd.DataFrame, target: float | None) -> pd.DataFrame:
    if summary.empty:
        return summary
    view = summary[["label", "hidden", "batch_size", "seeds", "ok"]].copy()
    view["val acc"] = [
        f"{m:.4f} ± {s:.4f} (±{c:.4f})" if np.isfinite(m) else ""
        for m, s, c in zip(
            summary["val_mean"], summary["val_std"].fillna(0), summary["val_ci95"].fillna(0)
        )
    ]
    view["test acc"] = [
        f"{m:.4f} ± {s:.4f} (±{c:.4f})" if np.isfinite(m) else ""
        for m, s, c in zip(
            summary["test_mean"], summary["test_std"].fillna(0), summary["test_ci95"].fillna(0)
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
) -> Path:
    """Write ``report.md``, ``report.html`` and the figures (PNG and SVG); return the HTML path."""
    results_dir = Path(results_dir)
    frame = results.load(results_dir)
    if frame.empty:
        raise NnbenchError(f"{results_dir}: no runs to report on; run an experiment first")
    out = Path(out_dir) if out_dir is not None else results_dir
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    name = title or str(frame["experiment"].iloc[0])

    summary = summary_table(frame, target)
    best = best_settings(summary)
    tuned = best["label"].tolist() if summary["label"].nunique() > best["label"].nunique() else None
    statuses = final_rows(frame)["status"].value_counts()
    sections: list[tuple[str, str, Any]] = []  # (heading, kind, payload)

    sections.append(
        (
            "Runs",
            "text",
            ", ".join(f"{n} {s}" for s, n in statuses.items())
            + f" ({frame['run_id'].nunique()} runs).",
        )
    )
    if is_blog_setting(frame):
        blog = blog_table(frame).rename(
            columns={
                "post_seconds": "post: seconds",
                "post_accuracy": "post: accuracy",
                "accuracy_mean": "ours: accuracy",
                "accuracy_std": "ours: sd",
                "seconds": "ours: seconds",
                "time_fraction": "ours / post time",
            }
        )
        sections.append(("The post's table, reproduced", "table", blog))
        sections.append(
            (
                "",
                "text",
                "Post: one run (seed 1234 of the post's own generator) "
                "on a 2013 laptop. Ours: mean and standard deviation over seeds of "
                "the final validation accuracy; training seconds exclude evaluation.",
            )
        )
    sections.append(("Summary over seeds", "table", _summary_view(summary, target)))
    sections.append(
        (
            "",
            "text",
            "Accuracy: mean ± standard deviation (± 95% confidence "
            "half-width, Student's t) of the final accuracy over seeds. 'ok' counts "
            "runs that completed, converged or were stopped.",
        )
    )
    if tuned is not None:
        view = best[
            ["optimizer", "hidden", "batch_size", "label", "val_mean", "test_mean", "test_std"]
        ].rename(
            columns={
                "label": "best setting (on validation)",
                "val_mean": "val acc",
                "test_mean": "test acc",
                "test_std": "test sd",
            }
        )
        sections.append(("Best setting per optimizer, chosen on validation", "table", view))
    bad = status_table(frame)
    sections.append((f"Runs that did not complete ({len(bad)})", "table", bad))

    figures: list[tuple[str, Figure]] = []
    for x in ("train_seconds", "epoch", "grad_evals"):
        figures.append((f"accuracy-vs-{x}", convergence_figure(frame, x, "val_accuracy", tuned)))
    for x in ("train_seconds", "epoch", "grad_evals"):
        figures.append((f"cost-vs-{x}", convergence_figure(frame, x, "train_cost", tuned)))
    figures.append(("final-accuracy", accuracy_distribution_figure(frame)))
    figures.append(("performance-profile", performance_profile_figure(frame, target, tuned)))

    embedded = []
    for fname, fig in figures:
        # "tight" grows the canvas to hold legends placed outside the axes
        fig.savefig(figdir / f"{fname}.svg", bbox_inches="tight")
        fig.savefig(figdir / f"{fname}.png", dpi=110, bbox_inches="tight")
        buf = io.BytesIO()  # the embedded copy is lighter; the files beside keep full detail
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        embedded.append((fname, base64.b64encode(buf.getvalue()).decode()))

    md = [f"# {name}: optimizer comparison\n"]
    body = [f"<h1>{html.escape(name)}: optimizer comparison</h1>"]
    for heading, kind, payload in sections:
        if heading:
            md.append(f"\n## {heading}\n")
            body.append(f"<h2>{html.escape(heading)}</h2>")
        if kind == "text":
            md.append(f"{payload}\n")
            body.append(f"<p>{html.escape(payload)}</p>")
        else:
            md.append(_markdown(payload))
            body.append(_html_table(payload))
    md.append("\n## Figures\n")
    body.append("<h2>Figures</h2>")
    rel = figdir.relative_to(out) if figdir.is_relative_to(out) else figdir
    for fname, data in embedded:
        md.append(f"![{fname}]({rel}/{fname}.png)\n")
        body.append(
            f'<figure><img alt="{fname}" src="data:image/png;base64,{data}">'
            f'<figcaption>{fname} (<a href="{rel}/{fname}.svg">SVG</a>)'
            "</figcaption></figure>"
        )
    (out / "report.md").write_text("\n".join(md))
    page = _HTML.format(title=html.escape(name), body="\n".join(body))
    (out / "report.html").write_text(page)
    return out / "report.html"


# The small script marks, once the page has loaded, how many figures decoded
# and how many table rows rendered; the browser test reads the marks.
_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
figure {{ margin: 1.5em 0; }}
</style></head>
<body>
{body}
<script>
window.addEventListener("load", function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {{
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }}
  document.body.setAttribute("data-figures", ok + "/" + imgs.length);
  document.body.setAttribute("data-table-rows", document.querySelectorAll("tbody tr").length);
}});
</script>
</body></html>
"""
