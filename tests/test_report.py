"""Reports on small hand-made results: every statistic recomputed by hand."""

import base64
import io
import itertools
import math
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats as scipy_stats

from nnbench import experiment, report, results, stats
from nnbench.errors import NnbenchError
from nnbench.report import figures, tables
from nnbench.train import METRICS

BASE = experiment.validate(
    {
        "name": "hand",
        "data": {"dataset": "mnist"},
        "budget": {"max_iter": 100},
        "eval": {"every": 50},
        "optimizer": [{"name": "gd"}],
    }
)


def spec(optimizer="gd", seed=1, hidden=(25,), batch_size=50, options=None):
    return BASE.spec(optimizer, options or {}, hidden=hidden, batch_size=batch_size, seed=seed)


def rows(accuracies, seconds, test=None):
    """Evaluation rows at iterations 0, 50, 100, ... with the given accuracies."""
    out = []
    for i, (acc, sec) in enumerate(zip(accuracies, seconds)):
        row = {k: 0.0 for k in METRICS}
        row["stack_seconds"] = float("nan")  # a run trained alone (not a stacked trial)
        row.update(
            iteration=50 * i,
            epoch=0.05 * i,
            grad_evals=50 * i,
            val_accuracy=acc,
            train_cost=2.0 - acc,
            test_accuracy=(test or accuracies)[i],
            train_seconds=sec,
            val_cost=1.0,
            train_accuracy=acc,
        )
        out.append(row)
    return out


@pytest.fixture
def hand_made(tmp_path):
    """gd: three seeds ending at 0.8, 0.9, 0.7; adam: two seeds, one failed, one diverged."""
    out = tmp_path / "hand"
    prov = {"numpy": np.__version__}
    gd = [
        ([0.1, 0.6, 0.8], [0, 1.0, 2.0]),
        ([0.1, 0.8, 0.9], [0, 3.0, 6.0]),
        ([0.1, 0.5, 0.7], [0, 2.0, 4.0]),
    ]
    for seed, (acc, sec) in enumerate(gd, start=1):
        results.write_run(out, spec("gd", seed), rows(acc, sec), "completed", "", prov)
    results.write_run(
        out, spec("adam", 1), rows([0.1, 0.85, 0.95], [0, 0.5, 1.0]), "completed", "", prov
    )
    results.write_run(out, spec("adam", 2), [], "failed", "RuntimeError: boom", prov)
    results.write_run(
        out,
        spec("adam", 3),
        rows([0.1, 0.2], [0, 0.4]),
        "diverged",
        "training cost 1e9 at iteration 50",
        prov,
    )
    return out


def test_summary_statistics_by_hand(hand_made):
    frame = results.load(hand_made)
    summary = tables.summary_table(frame, target=0.75).set_index("optimizer")
    gd = summary.loc["gd"]
    assert gd["seeds"] == 3 and gd["ok"] == 3
    assert gd["val_mean"] == pytest.approx(0.8)  # (0.8 + 0.9 + 0.7) / 3
    assert gd["val_std"] == pytest.approx(0.1)  # sqrt(((0)^2 + 0.1^2 + 0.1^2) / 2)
    # Student's t over 3 seeds: 0.8 +- t(0.975, 2) * 0.1 / sqrt(3) = 0.8 +- 0.2484,
    # whose top, 1.048, is cut to 1 (and said): an accuracy stays in [0, 1]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert (gd["val_low"], gd["val_high"]) == pytest.approx((0.8 - half, 1.0))
    assert gd["val_clipped"]
    # interpolated time to 0.75: seed 1 between 0.6 at 1 s and 0.8 at 2 s -> 1.75 s;
    # seed 2 between 0.1 at 0 s and 0.8 at 3 s -> 3 * 0.65 / 0.7 = 2.7857 s; seed 3 never
    assert gd["reached"] == 2
    assert gd["seconds_to_target"] == pytest.approx((1.75 + 3 * 0.65 / 0.7) / 2)
    # the same in gradient evaluations: 87.5 and 50 * 0.65 / 0.7 = 46.43
    assert gd["grad_evals_to_target"] == pytest.approx((87.5 + 50 * 0.65 / 0.7) / 2)
    assert gd["train_seconds"] == pytest.approx(4.0)  # mean of 2, 6, 4
    adam = summary.loc["adam"]
    assert adam["seeds"] == 3 and adam["ok"] == 1  # failed and diverged are counted
    assert adam["val_mean"] == pytest.approx((0.95 + 0.2) / 2)  # the failed run has none
    assert adam["reached"] == 1


def test_intervals_are_cut_to_the_range_of_accuracies_and_say_so(tmp_path):
    # two seeds far apart: a t interval would be 0.5 +- 6.35, far outside [0, 1]
    for seed, acc in ((1, 0.0), (2, 1.0)):
        results.write_run(tmp_path, spec(seed=seed), rows([0.5, acc], [0, 1]), "completed", "", {})
    summary = tables.summary_table(results.load(tmp_path))
    assert (summary["val_low"].iloc[0], summary["val_high"].iloc[0]) == (0.0, 1.0)
    assert summary["val_clipped"].iloc[0]
    report.build_report(tmp_path, tmp_path / "r", figures=["final-accuracy"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "0.5000 [0.0000, 1.0000]*" in md and "was cut there" in md


def test_failed_and_diverged_runs_are_listed(hand_made):
    bad = tables.status_table(results.load(hand_made))
    assert sorted(bad["status"]) == ["diverged", "failed"]
    assert "RuntimeError: boom" in bad["message"].tolist()


def test_figures_are_figures_from_a_registry(hand_made):
    frame = results.load(hand_made)
    ctx = figures.Context(frame, target=0.75)
    for name in figures.available():
        fig = figures.make(name, ctx)
        assert fig is None or isinstance(fig, Figure)
    assert figures.make("tuning-curve", ctx) is None  # not a tuned study
    with pytest.raises(NnbenchError, match="unknown figure 'pie'"):
        figures.make("pie", ctx)


def test_a_figure_is_one_registered_function(hand_made, tmp_path):
    @figures.figure("seed-count", "how many seeds each optimizer has")
    def seed_count(ctx):
        fig = figures.new_figure((4, 3))
        counts = results.final_rows(ctx.frame).groupby("optimizer").size()
        fig.subplots().bar(counts.index, counts.to_numpy())
        return fig

    try:
        report.build_report(hand_made, tmp_path / "r", figures=["seed-count"])
        assert (tmp_path / "r" / "figures" / "seed-count.svg").exists()
        assert not (tmp_path / "r" / "figures" / "final-accuracy.png").exists()
    finally:
        figures._REGISTRY.unregister("seed-count")


def test_no_global_matplotlib_state_is_changed(hand_made, tmp_path):
    before = matplotlib.get_backend()
    report.build_report(hand_made, tmp_path / "r", figures=["final-accuracy"])
    assert matplotlib.get_backend() == before


def test_one_colour_per_optimizer_everywhere():
    a = report.colours(["adam", "gd"])
    b = report.colours(["gd", "myplugin", "adam", "cg"])
    c = report.colours(["myplugin"])
    assert a["adam"] == b["adam"] and a["gd"] == b["gd"]
    assert b["myplugin"] == c["myplugin"]  # whatever else is shown
    assert len({tuple(v) for v in b.values()}) == len(b)


def test_report_builds_with_failed_and_diverged_runs(hand_made, tmp_path):
    """Every figure applies here but the tuning study's (test_figures_are_figures_
    from_a_registry draws each); two are written, as PNG, SVG and in the page."""
    out = tmp_path / "rep"
    asked = ["accuracy-vs-train_seconds", "performance-profile", "tuning-curve"]
    page = report.build_report(hand_made, out, target=0.75, figures=asked)
    md = (out / "report.md").read_text()
    assert "Runs that did not end normally (2)" in md and "RuntimeError: boom" in md
    assert "1 diverged" in md and "1 failed" in md
    assert "The post's table" in md  # gd on [25], batch 50, 100 iterations: the post's setting
    drawn = [n for n in figures.available() if (out / "figures" / f"{n}.png").exists()]
    assert drawn == asked[:2]  # not a tuned study: no tuning curve
    html_page = page.read_text()
    for name in drawn:
        png = (out / "figures" / f"{name}.png").read_bytes()
        assert len(png) > 1000 and (out / "figures" / f"{name}.svg").exists()
        with Image.open(io.BytesIO(png)) as image:
            assert image.mode == "P"  # a palette: a third of the bytes of RGBA
        assert base64.b64encode(png).decode() in html_page  # the very bytes written
    assert html_page.count("data:image/png;base64,") == len(drawn)


def test_a_report_is_the_same_bytes_when_rebuilt(hand_made, tmp_path):
    """No date or random id in any file: a committed report shows no change
    when rebuilt from the same runs."""
    out = tmp_path / "rep"

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.*"))}

    drawn = ["final-accuracy"]  # a PNG and an SVG
    report.build_report(hand_made, out, target=0.75, figures=drawn)
    first = files()
    report.build_report(hand_made, out, target=0.75, figures=drawn)
    assert any(name.endswith(".svg") for name in first) and files() == first


def test_a_report_of_failures_only_lists_them(tmp_path):
    results.write_run(tmp_path, spec(seed=1), [], "failed", "RuntimeError: boom", {})
    results.write_run(
        tmp_path,
        spec(seed=2),
        rows([math.nan], [0]),
        "diverged",
        "the starting cost is not finite",
        {},
    )
    report.build_report(tmp_path, figures=["final-accuracy", "accuracy-vs-train_seconds"])
    md = (tmp_path / "report.md").read_text()
    assert "Runs that did not end normally (2)" in md and "starting cost is not finite" in md


def test_the_blog_table_has_one_configuration_per_row(tmp_path):
    out = tmp_path / "blog"
    for opt, acc in (("gd", 0.83), ("cg", 0.86), ("rmsprop_blog", 0.2)):
        results.write_run(
            out, spec(opt, 1), rows([0.1, 0.5, acc], [0, 0.1, 0.284]), "completed", "", {}
        )
    # another gd setting in the same cell is not the post's GD: never averaged in
    results.write_run(
        out,
        spec("gd", 1, options={"learning_rate": 1.0}),
        rows([0.1, 0.5, 0.1], [0, 1, 2]),
        "completed",
        "",
        {},
    )
    table = tables.blog_table(results.load(out)).set_index("optimizer")
    gd = table.loc["GD, learning rate 0.3"]
    assert gd["post_accuracy"] == 0.8316 and gd["accuracy_mean"] == pytest.approx(0.83)
    assert gd["seeds"] == 1 and "time_fraction" not in table.columns
    report.build_report(out, figures=[])
    assert "The post's table, reproduced" in (out / "report.md").read_text()


def test_report_on_a_partly_finished_experiment(hand_made, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(hand_made, part)
    for f in sorted((part / "runs").glob("*.parquet"))[:3]:
        f.unlink()
    (part / "runs" / ".half.parquet.123.tmp").write_bytes(b"PAR1 half written")
    report.build_report(part, figures=["final-accuracy", "performance-profile"])
    assert (part / "report.html").exists()


def test_an_empty_results_folder_is_a_clear_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(NnbenchError, match="no runs to report"):
        report.build_report(tmp_path)
    with pytest.raises(NnbenchError, match="no such results folder"):
        report.build_report(tmp_path / "missing")


def test_the_profile_follows_algoperfs_rule_on_hand_made_runs(hand_made):
    """gd's three seeds are its studies, with one trial each: at target 0.75 seed 1
    reaches it at evaluation 2 (2.0 s), seed 2 at evaluation 1 (3.0 s), seed 3
    never: the median of (2, 3, inf) is 3.0. adam: seed 1 at 0.5 s, the failed
    seed 2 has no evaluations (not a study), seed 3 never: median(0.5, inf) = inf."""
    profile = tables.performance_profile(results.load(hand_made), 0.75)
    times, ratios, score = profile.times, profile.ratios, profile.score
    cell = ("mnist", "25", 50.0)
    gd, adam = dict(times.loc["gd"]), dict(times.loc["adam"])
    assert gd[cell] == 3.0 and math.isinf(adam[cell])
    assert dict(ratios.loc["gd"])[cell] == 1.0
    assert score["gd"] == 1.0 and score["adam"] == 0.0


def test_the_report_names_the_target_it_profiled(hand_made, tmp_path):
    """Without --target each cell's target is 99% of the best median final accuracy:
    gd's seeds end at 0.8, 0.9, 0.7 (median 0.8), adam's at 0.95 and, diverged, 0.2
    (median 0.575; the failed seed has no evaluations), so 0.99 * 0.8 = 0.792."""
    report.build_report(hand_made, tmp_path / "derived", figures=[])
    derived = (tmp_path / "derived" / "report.md").read_text()
    assert "else 99% of the best median" in derived
    assert "mnist, hidden 25, batch 50: 0.7920" in derived
    report.build_report(hand_made, tmp_path / "given", target=0.75, figures=[])
    assert (
        "Target: validation accuracy 0.75 in every cell."
        in (tmp_path / "given" / "report.md").read_text()
    )


# -- the report in a browser ------------------------------------------------------------


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="no Chromium here (.ci/run installs it)")
def test_report_renders_in_headless_chromium(hand_made, tmp_path):
    page = report.build_report(hand_made, tmp_path / "rep", target=0.75)
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            Path(page).resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    n_figures = page.read_text().count("data:image/png;base64,")
    assert f'data-figures="{n_figures}/{n_figures}"' in dom  # every embedded figure decoded
    n_rows = int(dom.split('data-table-rows="')[1].split('"')[0])
    expected = page.read_text().count("</td></tr>")  # body rows written
    assert n_rows == expected > 0  # every table row rendered


def _rewrite(path, change):
    """A run file with its table changed by ``change`` and its metadata kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = change(table.to_pandas())
    new = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(new.replace_schema_metadata(table.schema.metadata), path)


def test_loading_trusts_the_spec_and_numbers_only(tmp_path):
    """Configuration columns come from the run's spec whatever the file holds;
    a metric column of text leaves the file out with a warning; a copy of a run
    file counts once."""
    for seed in (1, 2, 3):
        results.write_run(tmp_path, spec(seed=seed), rows([0.5, 0.6], [0, 1]), "completed", "", {})
    paths = [results.run_path(tmp_path, spec(seed=seed).run_id) for seed in (1, 2, 3)]
    _rewrite(paths[0], lambda f: f.assign(batch_size="fifty", label=7))
    _rewrite(paths[1], lambda f: f.assign(val_accuracy="high"))
    shutil.copy(paths[2], paths[2].with_name("copy-" + paths[2].name))
    with pytest.warns(results.ResultsWarning, match="column val_accuracy holds"):
        frame = results.load(tmp_path)
    assert sorted(frame["seed"].unique()) == [1, 3]  # seed 2 left out; seed 3 once
    assert len(frame) == 4 and set(frame["batch_size"]) == {50} and set(frame["label"]) == {"gd"}
    # no run to any reader: the run table and a resume leave it out too (issue 27)
    assert sorted(results.load_runs(tmp_path)["seed"]) == [1, 3]
    with pytest.warns(results.ResultsWarning):
        report.build_report(tmp_path, tmp_path / "rep", figures=[])  # no traceback either


MARKUP = {
    "script": "<script>alert(1)</script>",
    "comment": "<!-- the rest is hidden",
    "link": "[click](javascript:alert(1))",
    "pipe": "a | b",
    "code": "`rm -rf`",
    "backslash": "c:\\",
}


def test_markup_planted_in_every_user_and_plugin_string_is_shown_never_read(tmp_path):
    """A plugin's option values (in labels and the tuning tables), an exception's
    message (the failures table) and a figure's error (a note): every one shown
    as text in report.md and report.html, none read as markup."""
    exp = experiment.validate(
        {"name": "m_a_r_k", "data": {"dataset": "digits"}, "budget": {"max_iter": 100},
         "eval": {"every": 50}, "optimizer": [{"name": "gd"}]}
    )  # fmt: skip
    base = exp.spec("gd", {}, hidden=(25,), batch_size=50, seed=1).__dict__
    spec_ok = experiment.RunSpec(**{**base, "optimizer": "plugged", "options": dict(MARKUP)})
    results.write_run(tmp_path, spec_ok, rows([0.1, 0.5, 0.8], [0, 1, 2]), "completed", "", {})
    spec_bad = experiment.RunSpec(**{**spec_ok.__dict__, "values": {**spec_ok.values, "seed": 2}})
    message = "RuntimeError: " + " ".join(MARKUP.values())
    results.write_run(tmp_path, spec_bad, [], "failed", message, {})

    @figures.figure("broken", "a figure that fails")
    def broken(ctx):
        raise ValueError(MARKUP["script"])

    try:
        report.build_report(tmp_path, tmp_path / "rep", figures=["broken", "final-accuracy"])
    finally:
        figures._REGISTRY.unregister("broken")
    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    body = page.split("<body>")[1].rsplit("<script>", 1)[0]  # the page's own script aside
    for text in (md, body):
        assert "<script>" not in text and "<!--" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "](javascript" not in md  # no link in Markdown (HTML shows the brackets as text)
    assert "figure broken could not be drawn: ValueError" in md  # a note, not the end
    assert (tmp_path / "rep" / "figures" / "final-accuracy.png").exists()
    columns = None  # a planted pipe never adds a column: every row as wide as its header
    for line in md.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        width = line.replace("\\|", "").count("|")
        columns = width if columns is None else columns
        assert width == columns, line


def test_times_are_the_cpu_clock_when_runs_shared_the_machine(tmp_path):
    """Runs recorded with two at a time: the profile and time to target read their
    CPU seconds, and the report says so; runs alone: the wall clock."""
    for seed, (wall, cpu) in enumerate([(4.0, 1.0), (6.0, 1.5)], start=1):
        r = rows([0.1, 0.5, 0.8], [0, wall / 2, wall])
        for row, c in zip(r, (0, cpu / 2, cpu)):
            row["train_cpu_seconds"] = c
        results.write_run(tmp_path / "shared", spec(seed=seed), r, "completed", "", {"n_jobs": 2})
        results.write_run(tmp_path / "alone", spec(seed=seed), r, "completed", "", {"n_jobs": 1})
    assert tables.time_axis(results.load(tmp_path / "shared")) == "train_cpu_seconds"
    assert tables.time_axis(results.load(tmp_path / "alone")) == "train_seconds"
    report.build_report(tmp_path / "shared", tmp_path / "r", target=0.7, figures=["final-accuracy"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "the CPU seconds of each run's own process" in md


def test_shared_runs_without_a_cpu_clock_are_not_said_to_be_alone(tmp_path):
    """Older runs: two at a time, no CPU seconds. The wall clock it must be,
    and the report says the runs shared the machine, never that they ran alone."""
    for seed in (1, 2):
        r = rows([0.1, 0.5, 0.8], [0, 2.0, 4.0])
        for row in r:
            row.pop("train_cpu_seconds", None)
        results.write_run(tmp_path / "old", spec(seed=seed), r, "completed", "", {"n_jobs": 2})
    frame = results.load(tmp_path / "old")
    assert tables.time_axis(frame) == "train_seconds" and tables.shared_machine(frame)
    report.build_report(tmp_path / "old", tmp_path / "r", target=0.7, figures=[])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "wall seconds of runs that shared the machine" in md
    assert "ran one at a time" not in md


# -- which optimizer ends higher: paired tests with Holm's correction ----------------------


def test_pairwise_verdicts_on_a_known_case(final_frame):
    cells = [("25", 50.0), ("25", 200.0), ("128", 50.0), ("128", 200.0)]
    base = {cell: np.array([0.950, 0.952, 0.949]) + i * 0.01 for i, cell in enumerate(cells)}
    values = {}
    for cell in cells:
        values[("a", cell)] = base[cell]
        values[("b", cell)] = base[cell] + 0.02 + np.array([0.0, 0.001, -0.001])  # always higher
        values[("c", cell)] = base[cell]  # the same numbers as a
    study, per_cell, missing = tables.pairwise_verdicts(final_frame(values))
    got = {(r["a"], r["b"]): r for r in study.to_dict("records")}
    # over the study the unit is the seed: its differences averaged over the 4 cells,
    # 0.020, 0.021, 0.019; 3 seeds cannot reach Holm's first level by sign flips
    # (2 / 2^3 = 0.25), so the t-test, the spread (0.001) at least the values' step
    # (0.001): t = 0.02 / (0.001 / sqrt(3)), 2 degrees of freedom
    p = 2 * scipy_stats.t.sf(0.02 / (0.001 / math.sqrt(3)), 2)
    ab = got[("a", "b")]
    assert ab["test"] == "t (floored)" and ab["p"] == pytest.approx(p)
    assert ab["p_holm"] == pytest.approx(3 * p)  # Holm over 3 pairs, two of them equal
    assert ab["verdict"] == "b" and got[("b", "c")]["verdict"] == "b"
    assert ab["n"] == 3 and ab["cells"] == 4 and ab["seeds_higher"] == 3
    assert ab["mean"] == pytest.approx(0.02) and ab["cells_higher"] == 4
    half = scipy_stats.t.ppf(0.975, 2) * 0.001 / math.sqrt(3)
    assert (ab["low"], ab["high"]) == pytest.approx((0.02 - half, 0.02 + half))
    bc = got[("b", "c")]
    assert bc["mean"] == pytest.approx(-0.02) and (bc["cells_higher"], bc["cells_lower"]) == (0, 4)
    assert got[("a", "c")]["verdict"] == "" and got[("a", "c")]["p"] == 1.0  # identical
    # per cell, the same three differences: the same p, Holm over 12 tests
    assert per_cell["p"].max() == pytest.approx(1.0) and len(per_cell) == 3 * len(cells)
    assert per_cell.loc[per_cell["b"] == "b", "p"].to_numpy() == pytest.approx(p)
    assert missing == 0


def test_one_cell_gets_all_of_alpha_and_the_posts_momentum_a_verdict():
    """The post's table: one cell, 5 seeds, momentum above GD in every seed (by
    0.042 on average). No sign-flip test of 5 seeds reaches 2.5% (2 / 2^5 =
    0.0625), so the floored t-test decides, with all of alpha: no second family."""
    frame = results.load(Path(__file__).resolve().parents[1] / "results" / "blog")
    study, per_cell, _ = tables.pairwise_verdicts(frame, metric="val_accuracy")
    assert per_cell.empty
    row = study[(study["a"] == "gd") & (study["b"] == "momentum")].iloc[0]
    assert row["verdict"] == "momentum" and row["test"] == "t (floored)"
    assert row["seeds_higher"] == 5 and row["seeds_lower"] == 0
    assert row["mean"] == pytest.approx(0.042, abs=0.001) and row["low"] > 0


def test_pairwise_verdicts_count_diverged_runs_and_name_failed_ones(final_frame):
    cells = [("25", 50.0), ("128", 50.0)]
    values = {}
    for cell in cells:
        values[("a", cell)] = np.full(4, 0.95)
        values[("b", cell)] = np.array([0.97, 0.97, 0.10, np.nan])  # diverged, then failed
    frame = final_frame(values)
    frame.loc[frame["test_accuracy"] == 0.10, "status"] = "diverged"
    frame.loc[frame["test_accuracy"].isna(), "status"] = "failed"
    study, _, missing = tables.pairwise_verdicts(frame)
    row = study.iloc[0]
    # the diverged runs count, the failed ones cannot: 3 seeds, each over 2 cells
    assert missing == 2 and row["n"] == 3 and row["cells"] == 2
    assert row["mean"] < 0 and row["verdict"] == ""  # b does not "end higher"


def correlated_finals(rng, rho, n_seeds, pair_rho=0.0, n_opt=8):
    """Equal optimizers in 6 cells (3 networks x 2 batch sizes), accuracies in
    steps of 1e-4: each run's noise correlated ``rho`` across a seed's cells (a
    shared minibatch order) plus ``pair_rho`` between a network's two batch
    sizes (shared start weights)."""
    cells = [(h, b) for h in ("25", "128", "100-50") for b in (50.0, 200.0)]
    cov = np.full((6, 6), rho)
    for i in range(0, 6, 2):
        cov[i, i + 1] = cov[i + 1, i] = rho + pair_rho
    np.fill_diagonal(cov, 1.0)
    chol = np.linalg.cholesky(cov)
    finals = {}
    for opt in "abcdefgh"[:n_opt]:
        noise = rng.standard_normal((n_seeds, 6)) @ chol.T  # (seeds, cells)
        for k, cell in enumerate(cells):
            accs = np.round(0.95 + 0.0005 * noise[:, k], 4)
            finals[(opt, cell)] = dict(enumerate(accs.tolist(), start=1))
    return finals


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rho", "pair_rho", "n_seeds"),
    [(0.0, 0.0, 3), (0.5, 0.0, 3), (0.9, 0.0, 3), (0.0, 0.6, 3), (0.5, 0.0, 5), (0.9, 0.0, 10)],
)
def test_pairwise_verdicts_keep_the_familywise_error_rate_under_the_designs_dependence(
    rho, pair_rho, n_seeds
):
    """Eight optimizers that are all the same, 28 pairs in 6 cells, accuracies in
    steps of 1e-4: any verdict is a false one. A seed's cells correlated as the
    design makes them (a shared minibatch order: ``rho``; shared start weights
    between a network's batch sizes: ``pair_rho``), where a test that took cells
    as independent reached 20-50%. The seed-level tests keep P(any false
    verdict) <= 5% over both tables (400 simulated studies each: Monte Carlo
    standard error 1.1% at 5%, so at most 8.3% is 3 of them)."""
    rng = np.random.default_rng(int(rho * 10 + pair_rho * 100 + n_seeds))
    n_sim, any_at_all, naive = 400, 0, 0
    for _ in range(n_sim):
        finals = correlated_finals(rng, rho, n_seeds, pair_rho)
        study, per_cell = tables.verdicts_of(finals)
        any_at_all += bool((study["verdict"] != "").any() or (per_cell["verdict"] != "").any())
        if rho == 0.5 and n_seeds == 3:  # the simulation sees dependence: cells as units fail
            ps = []
            for a, b in itertools.combinations("abcdefgh", 2):
                d = [finals[(b, c)][s] - finals[(a, c)][s] for (o, c) in finals if o == a
                     for s in finals[(o, c)]]  # fmt: skip
                ps.append(stats.floored_t(d, 1e-4).p)
            naive += bool((stats.holm(ps) < 0.025).any())
    assert any_at_all / n_sim <= 0.05 + 3 * 0.011
    if rho == 0.5 and n_seeds == 3:
        assert naive / n_sim > 0.3  # measured: 68% with (cell, seed) differences as units
    print(f"rho {rho}, pair {pair_rho}, {n_seeds} seeds: family-wise error {any_at_all / n_sim}")


def test_times_beyond_four_times_the_fastest_are_shown_as_never():
    from nnbench.report import _time_text

    assert _time_text(72.1, 10.0, tie=False).startswith("never (72.1")
    assert _time_text(40.0, 10.0, tie=False) == "40"  # 4x exactly still counts
    assert _time_text(10.5, 10.0, tie=True) == "10.5 (tie)"
    assert _time_text(math.inf, 10.0, tie=False) == "never"


def test_normalised_scores_use_fixed_references_whichever_optimizers_are_compared(final_frame):
    """rliable's rule: (accuracy - chance) / (1 - chance), chance 1/10 for MNIST's
    ten classes; an optimizer added or removed moves no other's score or IQM."""
    cells = [("25", 50.0), ("128", 50.0)]
    values = {("a", c): np.array([0.55, 0.64, 0.91]) for c in cells}
    values |= {("b", c): np.array([0.82, 0.91, 0.73]) for c in cells}
    frame = final_frame(values)
    scores = tables.normalised_scores(frame)
    a = scores[scores["optimizer"] == "a"].groupby("seed")["score"].first().to_numpy()
    assert a == pytest.approx([0.5, 0.6, 0.9])
    with_c = final_frame(values | {("c", c): np.array([0.1, 0.1, 0.1]) for c in cells})
    iqm_two, _ = tables.aggregates(frame)
    iqm_three, _ = tables.aggregates(with_c)
    both = iqm_two.set_index("optimizer")["iqm"]
    assert iqm_three.set_index("optimizer")["iqm"][both.index].to_numpy() == pytest.approx(both)


def test_the_sensitivity_figure_draws_for_the_committed_tuned_study():
    """Its options column is categorical: pandas 3 refused to map json.loads over it,
    and the figure was a note 'could not be drawn' in every tuned report."""
    folder = Path(__file__).resolve().parents[1] / "results" / "extended"
    frame = results.load(folder)
    values = tables.searched_values(frame)
    assert values["learning_rate"].notna().any()
    ctx = figures.Context(frame, target=0.97, spaces=report.search_spaces(folder))
    assert figures.make("sensitivity", ctx) is not None


# -- every registered figure draws, or a test sees it ----------------------------------------

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def figure_cases(tmp_path_factory):
    """A tuned study, a grid, a grid with failed runs, a grid of one optimizer."""
    blog = results.load(RESULTS / "blog")
    failed = tmp_path_factory.mktemp("failed") / "blog"
    shutil.copytree(RESULTS / "blog", failed)
    stored = results.stored_runs(failed)
    for run in list(stored.values())[:7]:  # CG's and others' runs fail before an evaluation
        results.write_run(failed, run.spec, [], "failed", "planted", {})
    extended = results.load(RESULTS / "extended")  # three optimizers in two cells: quick
    extended = extended[extended["optimizer"].isin(["adam", "gd", "cg"])
                        & (extended["hidden"].astype(str) == "25")]  # fmt: skip
    spaces = report.search_spaces(RESULTS / "extended")
    return {
        "tuned": figures.Context(extended, target=0.97, spaces=spaces),
        "grid": figures.Context(blog),
        "failed runs": figures.Context(results.load(failed)),
        "one optimizer": figures.Context(blog[blog["optimizer"] == "gd"]),
    }


@pytest.mark.parametrize("case", ["tuned", "grid", "failed runs", "one optimizer"])
def test_every_registered_figure_draws(figure_cases, case):
    """None is a figure's word that it does not apply (a tuning curve of a grid);
    anything raised is a figure that cannot be drawn, a failure here."""
    ctx = figure_cases[case]
    drawn = [name for name in figures.available() if figures.make(name, ctx) is not None]
    assert "final-accuracy" in drawn
    if case == "tuned":
        assert {"sensitivity", "tuning-curve", "difference"} <= set(drawn)


def test_a_figure_that_fails_is_a_note_and_its_own_exit_status(tmp_path, monkeypatch, capsys):
    from nnbench.cli import EXIT_FIGURE_FAILED, main

    def broken(ctx):
        raise ValueError("planted")

    monkeypatch.setattr(figures._REGISTRY, "_items", dict(figures._REGISTRY._items))
    figures.figure("broken", "a planted failure")(broken)  # in the copy: gone after the test
    out = tmp_path / "report"
    code = main(["report", str(RESULTS / "blog"), "--out", str(out),
                 "--figures", "final-accuracy,broken"])  # fmt: skip
    assert code == EXIT_FIGURE_FAILED != 0
    assert "figure broken could not be drawn: ValueError: planted" in capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "figure broken could not be drawn" in md and "final-accuracy.png" in md


def test_labels_with_dollar_signs_are_text_in_figures(tmp_path):
    """An option value `$\\frac{1}{$` once ended `report` in a mathtext error, and
    `$x$` was typeset as math: a label is text in every renderer."""
    from matplotlib.text import Text

    from nnbench.report import figures

    out = tmp_path / "dollars"
    for seed in (1, 2):
        for note in ("$\\frac{1}{$", "$x$"):
            run = spec("gd", seed, options={"note": note})
            results.write_run(out, run, rows([0.1, 0.5], [0, 1.0]), "completed", "", {})
    report.build_report(out, tmp_path / "r", figures=["final-accuracy"])
    ctx = figures.Context(results.load(out), target=0.75)
    fig = figures.make("final-accuracy", ctx)
    texts = [t for t in fig.findobj(Text) if "$x$" in t.get_text()]
    assert texts and not any(t.get_parse_math() for t in texts)


def test_a_full_disk_names_the_file_and_leaves_no_figures_folder(hand_made, monkeypatch):
    """A caveat of issue 27: `[Errno 28]` named no file, and figures/ stayed half written."""
    import errno

    from nnbench.report import render

    real = render.atomic_write

    def full(path, data):
        if Path(path).suffix == ".svg":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(render, "atomic_write", full)
    with pytest.raises(NnbenchError, match=r"figures/final-accuracy\.svg: No space left"):
        report.build(hand_made, figures=["final-accuracy"])
    assert not (hand_made / "figures").exists()
    assert not (hand_made / "report.md").exists()


def test_a_plugin_adds_a_figure_through_its_entry_point(hand_made, tmp_path):
    """tests/plugin_site declares runs-per-optimizer in the nnbench.figures group."""
    assert "runs-per-optimizer" in figures.available()
    assert not figures._REGISTRY.builtin("runs-per-optimizer")
    report.build_report(hand_made, tmp_path / "r", figures=["runs-per-optimizer"])
    assert (tmp_path / "r" / "figures" / "runs-per-optimizer.png").exists()
    md = (tmp_path / "r" / "report.md").read_text()
    assert "how many runs each optimizer has (test plugin)" in md
