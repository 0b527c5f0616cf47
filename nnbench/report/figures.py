"""The report's figures: a registry of functions, each returning a matplotlib ``Figure``.

A figure is one function decorated with :func:`figure`; ``nnbench report
--figures a,b`` picks some. The functions draw on ``Figure`` objects with
their own Agg canvas: nothing here touches pyplot or the caller's backend,
and nothing calls ``show()``. Each optimizer keeps one colour in every
figure, by name.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnbench import stats
from nnbench.errors import NnbenchError
from nnbench.registry import Registry
from nnbench.report import tables
from nnbench.results import final_rows

# The colours of optimizers that declare none (``Optimizer.colour``): one drawn
# from a hash of the name, so a plugin's colour never depends on what else is shown.
_SPARE = ("tab:cyan", *matplotlib.colormaps["Dark2"].colors)


def colour(name: str) -> Any:
    """The colour of optimizer ``name``, the same in every figure and report: the
    one it declares, else one of :data:`_SPARE` by its name."""
    from nnbench import optimizers

    declared = optimizers.available().get(name)
    if declared is not None and declared.colour is not None:
        return declared.colour
    return _SPARE[zlib.crc32(name.encode()) % len(_SPARE)]


def colours(names: Sequence[str]) -> dict[str, Any]:
    return {name: colour(name) for name in names}


@dataclass
class Context:
    """What a figure draws from: the long results table and the report's choices.

    ``frame``: every run (a tuned study's trials too); ``shown``: the runs that
    stand for the folder (:func:`nnbench.tune.reported`; ``frame`` when not given).
    """

    frame: pd.DataFrame
    target: float | None = None
    labels: list[str] | None = None  # the configurations to draw (by name), or all
    spaces: dict | None = None  # tuned experiments: the search spaces
    cache: dict = field(default_factory=dict)
    shown: pd.DataFrame | None = None
    time_col: str = "train_seconds"

    def __post_init__(self) -> None:
        if self.shown is None:
            from nnbench.tune import reported

            self.shown = reported(self.frame, None)


FigureFunction = Callable[[Context], Figure | None]
ENTRY_POINT_GROUP = "nnbench.figures"


def _accept(fn: Any, name: str) -> FigureFunction:
    if not callable(fn) or not isinstance(getattr(fn, "caption", None), str):
        raise TypeError(f"figure {name!r} is not a function made with nnbench's @figure")
    return fn


_REGISTRY: Registry[FigureFunction] = Registry("figure", ENTRY_POINT_GROUP, _accept, NnbenchError)


def figure(name: str, caption: str) -> Callable[[FigureFunction], FigureFunction]:
    """Register a figure function under ``name`` with its caption; it may return
    None when it does not apply to the results (the tuning curve of an untuned
    grid). A plugin decorates its function so, and names it in its entry points
    (``[project.entry-points."nnbench.figures"]``)."""

    def register(fn: FigureFunction) -> FigureFunction:
        fn.caption = caption  # type: ignore[attr-defined]
        _REGISTRY.register(name, fn, builtin=fn.__module__ == __name__)
        return fn

    return register


def available() -> list[str]:
    """Every figure that loads: the built-ins, then the plugins'."""
    return list(_REGISTRY.available())


def plugin_errors() -> dict[str, str]:
    return _REGISTRY.errors()


def caption(name: str) -> str:
    return _REGISTRY.get(name).caption  # type: ignore[attr-defined]


def make(name: str, ctx: Context) -> Figure | None:
    draw = _REGISTRY.get(name)
    import matplotlib

    # labels are text: a `$` in an option's value is no mathtext (`$\frac{1}{$` would
    # stop the report, `$x$` be typeset), as they are no markup in Markdown or HTML
    with matplotlib.rc_context({"text.parse_math": False}):
        return draw(ctx)


def new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # its own canvas: no global backend is chosen or changed
    return fig


def _cells(frame: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(workload, hidden, batch size): by workload, then smaller and shallower
    networks first."""

    def order(cell: tuple[str, str, float]) -> tuple:
        sizes = [int(u) for u in cell[1].split("-") if u.isdigit()]
        return cell[0], len(sizes), sizes, cell[2]

    return sorted(set(tables.cells_of(frame)), key=order)


def _in_cell(frame: pd.DataFrame, cell: tuple[str, str, float]) -> pd.DataFrame:
    workload, hidden, batch = cell
    return frame[
        (frame["workload"] == workload) & (frame["hidden"] == hidden)
        & (frame["batch_size"] == batch)
    ]  # fmt: skip


def _grid(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    width = max(width, 8.0 / cols)  # room for the title and legend with a single panel
    rows = math.ceil(n / cols)
    fig = new_figure((width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _shown(ctx: Context) -> pd.DataFrame:
    """The rows to draw: the runs that stand for the folder, the chosen settings
    of each optimizer when it has several."""
    data = ctx.shown.dropna(subset=["iteration"])
    if ctx.labels is not None:
        data = data[data["name"].isin(ctx.labels)]
    return data


def _legend(fig: Figure, axes: np.ndarray) -> None:
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
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


X_LABELS = {
    "train_seconds": "training seconds",
    "epoch": "epochs",
    "grad_evals": "gradient evaluations",
    "iteration": "iterations",
}
Y_LABELS = {"val_accuracy": "validation accuracy", "train_cost": "training cost"}


def convergence(ctx: Context, x: str, y: str) -> Figure | None:
    """``y`` against ``x``: the median over seeds, with a band from the lowest to
    the highest seed; one panel per architecture x batch size."""
    data = _shown(ctx)
    cells = _cells(data)
    if not cells:
        return None  # nothing evaluated to draw (a study whose finals are still to run)
    fig, axes = _grid(len(cells))
    for ax, where in zip(axes.flat, cells):
        cell = _in_cell(data, where).copy()
        cell["point"] = cell.groupby("run_id").cumcount()
        styles: dict[str, Any] = {}
        later: list[float] = []  # the band over each curve's later half: what a zoom shows
        for label, runs in cell.groupby("name", sort=True):
            opt = runs["optimizer"].iloc[0]
            styles.setdefault(opt, iter(["-", "--", ":", "-."] * 10))
            agg = runs.groupby("point").agg(
                x=(x, "median"), y=(y, "median"), lo=(y, "min"), hi=(y, "max")
            )
            half = agg.iloc[len(agg) // 2 :]
            later += [float(half["lo"].min()), float(half["hi"].max())]
            ax.plot(
                agg["x"], agg["y"], next(styles[opt]), color=colour(opt), label=label, linewidth=1.6
            )
            ax.fill_between(
                agg["x"], agg["lo"], agg["hi"], color=colour(opt), alpha=0.15, linewidth=0
            )
        ax.set_title(tables.cell_text(where), fontsize=10)
        ax.set_xlabel(X_LABELS.get(x, x))
        ax.set_ylabel(Y_LABELS.get(y, y))
        positive = cell[x][cell[x] > 0]
        if x in ("grad_evals", "train_seconds") and len(positive):
            ax.set_xscale("symlog", linthresh=max(float(positive.min()), 1e-3))
        if y.endswith("cost") and (cell[y] > 0).all():
            ax.set_yscale("log")
        if y.endswith("accuracy"):
            _zoom(ax, later)
        ax.grid(alpha=0.3)
    zoom = (
        "; accuracy zoomed to the later half of every curve, its range in each panel"
        if y.endswith("accuracy")
        else ""
    )
    fig.suptitle(
        f"{Y_LABELS.get(y, y)} against {X_LABELS.get(x, x)}\n"
        f"(median over seeds; band: lowest to highest seed{zoom})",
        fontsize=10,
    )
    _legend(fig, axes)
    return fig


def _zoom(ax: Any, values: list[float]) -> None:
    """Zoom an accuracy axis to ``values`` (the later half of the curves), padded,
    and say the range in the panel: curves at 0.96 and 0.97 are apart, not one line."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    pad = max((high - low) * 0.08, 1e-3)
    ax.set_ylim(max(low - pad, 0.0), min(high + pad, 1.0))
    ax.text(0.99, 0.02, f"y: {max(low - pad, 0.0):.3f} to {min(high + pad, 1.0):.3f}",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3")  # fmt: skip


for _y, _name in (("val_accuracy", "accuracy"), ("train_cost", "cost")):
    for _x in ("train_seconds", "epoch", "grad_evals"):
        figure(f"{_name}-vs-{_x}", f"{Y_LABELS[_y]} against {X_LABELS[_x]}")(
            lambda ctx, x=_x, y=_y: convergence(ctx, x, y)
        )


@figure("final-accuracy", "final validation accuracy of every seed, per setting")
def accuracy_distribution(ctx: Context, column: str = "val_accuracy") -> Figure | None:
    last = final_rows(ctx.shown)
    cells = _cells(last)
    if not cells:
        return None
    fig, axes = _grid(len(cells), width=5.5, height=max(2.5, 0.5 + 0.42 * last["name"].nunique()))
    rng = np.random.default_rng(0)  # jitter only
    for ax, where in zip(axes.flat, cells):
        cell = _in_cell(last, where)
        order = sorted(cell["name"].unique())
        for i, label in enumerate(order):
            runs = cell[cell["name"] == label]
            vals = runs[column].to_numpy(dtype=float)
            c = colour(runs["optimizer"].iloc[0])
            ok = runs["status"].isin(tables.OK).to_numpy()
            jitter = rng.uniform(-0.15, 0.15, size=len(vals))
            ax.scatter(vals[ok], i + jitter[ok], color=c, s=22, zorder=3)
            ax.scatter(vals[~ok], i + jitter[~ok], color=c, marker="x", s=30, zorder=3)
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
        ax.set_xlabel(f"final {Y_LABELS.get(column, column)} (x: did not end normally)")
        ax.set_title(tables.cell_text(where), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("final accuracy over seeds (bar: median)", fontsize=11)
    fig.tight_layout()
    return fig


@figure(
    "difference",
    "final validation accuracy of each optimizer minus the reference's, seed by seed",
)
def difference(ctx: Context, column: str = "val_accuracy") -> Figure | None:
    """Per cell, each optimizer's seed-paired difference from the reference (the
    optimizer with the highest mean over every cell): the seeds as dots, their
    mean with its 95% t interval (spread floored at one example), a line at 0.
    Where accuracies lie within a few hundredths, this is what tells them apart."""
    last = final_rows(ctx.shown)
    last = last[last["status"].isin(tables.OK)].dropna(subset=[column])
    if last["optimizer"].nunique() < 2:
        return None  # nothing to tell apart
    finals, _ = tables.paired_finals(last, column)
    means = last.groupby("optimizer", observed=True)[column].mean()
    reference = sorted(means.index, key=lambda o: (-means[o], o))[0]
    others = sorted(o for o in means.index if o != reference)
    cells = _cells(last)
    step = stats.value_step(last[column].to_numpy(dtype=float))
    fig, axes = _grid(len(cells), width=5.5, height=max(2.5, 0.6 + 0.45 * len(others)))
    for ax, cell in zip(axes.flat, cells):
        ref = finals.get((reference, cell), {})
        for i, opt in enumerate(others):
            runs = finals.get((opt, cell), {})
            seeds = sorted(ref.keys() & runs.keys())
            d = np.array([runs[x] - ref[x] for x in seeds])
            if not len(d):
                continue
            c = colour(opt)
            ax.scatter(d, np.full(len(d), i), color=c, s=18, alpha=0.7, zorder=3)
            t = stats.floored_t(d, step)
            if t is not None:
                ax.plot([t.low, t.high], [i + 0.25] * 2, color=c, lw=2)
            ax.plot([d.mean()] * 2, [i + 0.1, i + 0.4], color="black", lw=1.2)
        ax.axvline(0.0, color="0.4", lw=0.8)
        ax.set_yticks(range(len(others)), others, fontsize=8)
        ax.set_ylim(-0.6, len(others) - 0.4)
        ax.set_xlabel(f"final {Y_LABELS.get(column, column)} minus {reference}'s (same seed)")
        ax.set_title(tables.cell_text(cell), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"each optimizer against {reference} (highest mean), seed by seed: dots the seeds, "
        "bar the mean,\nline its 95% t interval (spread at least one example)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


@figure("performance-profile", "AlgoPerf's performance profile of the optimizers")
def performance_profile(ctx: Context) -> Figure | None:
    shown = ctx.shown[ctx.shown["iteration"].notna()]
    if shown.empty:
        return None  # a tuned study without finals: nothing to profile yet
    profile = ctx.cache.get("profile") or tables.performance_profile(
        shown, ctx.target, ctx.time_col
    )
    times, rho, score = profile.times, profile.rho, profile.score
    if rho.empty:
        raise NnbenchError("no runs for a performance profile")
    fig = new_figure((7, 4.2))
    ax = fig.subplots()
    taus = np.asarray(rho.columns, dtype=float)
    for opt in rho.index:
        ax.step(
            taus,
            rho.loc[opt].to_numpy(),
            where="post",
            color=colour(opt),
            label=f"{opt} (score {score[opt]:.3f})",
        )
    ax.set_ylim(-0.02, 1.02)
    clock = "CPU" if ctx.time_col == "train_cpu_seconds" else "wall"
    ax.set_xlabel(f"tau: time to target ({clock} seconds) / the fastest optimizer's, per cell")
    ax.set_ylabel("fraction of cells")
    what = (
        f"validation accuracy {ctx.target:g}"
        if ctx.target is not None
        else "99% of the cell's best median final validation accuracy"
    )
    ax.set_title(
        f"AlgoPerf performance profile over {times.shape[1]} cell(s): best setting per seed,\n"
        f"median over seeds, beyond 4x the fastest counts as never; target {what}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


@figure("tuning-curve", "expected best validation accuracy after k trials (Dodge et al. 2019)")
def tuning_curve(ctx: Context) -> Figure | None:
    curve = tables.tuning_curve(ctx.frame)
    if curve.empty:
        return None
    cells = _cells(curve)
    fig, axes = _grid(len(cells))
    for ax, where in zip(axes.flat, cells):
        cell = _in_cell(curve, where)
        for opt, group in cell.groupby("optimizer", sort=True):
            ax.plot(group["k"], group["mean"], color=colour(opt), label=opt, linewidth=1.6)
            ax.fill_between(
                group["k"],
                group["mean"] - group["std"],
                group["mean"] + group["std"],
                color=colour(opt),
                alpha=0.15,
                linewidth=0,
            )
        ax.set_title(tables.cell_text(where), fontsize=10)
        ax.set_xlabel("trials k")
        ax.set_ylabel("expected best validation accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle(
        "tuning budget: expected best of k trials (band: +- one standard deviation)", fontsize=10
    )
    _legend(fig, axes)
    return fig


@figure("sensitivity", "final validation accuracy against each searched option")
def sensitivity(ctx: Context) -> Figure | None:
    table = tables.searched_values(ctx.frame)
    if table.empty:
        return None
    searched = sorted({(opt, key) for opt, spaces in (ctx.spaces or {}).items() for key in spaces})
    searched = [(o, k) for o, k in searched if k in table and (table["optimizer"] == o).any()]
    if not searched:
        return None
    fig, axes = _grid(len(searched), width=4.5, height=3.4)
    for ax, (opt, key) in zip(axes.flat, searched):
        rows = table[table["optimizer"] == opt]
        for where, cell in rows.groupby(tables.CELL, sort=True):
            ax.scatter(cell[key], cell["val_mean"], s=16, alpha=0.8, label=tables.cell_text(where))
        space = (ctx.spaces or {}).get(opt, {}).get(key)
        if space is not None and getattr(space, "log", False):
            ax.set_xscale("log")
        ax.set_title(f"{opt}: {key}", fontsize=10, color=colour(opt))
        ax.set_xlabel(key)
        ax.set_ylabel("mean final validation accuracy")
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    return fig
