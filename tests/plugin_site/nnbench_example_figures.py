"""A third-party figure, registered through the ``nnbench.figures`` entry point (a
module of its own: an optimizer plugin's runs need not import matplotlib)."""

from nnbench.report.figures import figure, new_figure


@figure("runs-per-optimizer", "how many runs each optimizer has (test plugin)")
def runs_per_optimizer(ctx):
    """A figure a plugin adds: one bar per optimizer."""
    counts = ctx.shown.groupby("optimizer")["run_id"].nunique()
    fig = new_figure((4, 3))
    fig.subplots().bar(counts.index, counts.to_numpy())
    return fig
