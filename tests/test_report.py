"""Reports and the regression check, on small hand-made results."""

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure

from nnbench import check, report, results
from nnbench.errors import NnbenchError
from nnbench.grid import RunSpec
from nnbench.train import METRICS


def spec(optimizer="gd", seed=1, hidden=(25,), batch_size=50, options=None):
    return RunSpec(
        experiment="hand",
        dataset="mnist",
        data_path=None,
        train_split="train",
        val_split="valid",
        test_split="test",
        dtype="float64",
        hidden=hidden,
        activation="sigmoid",
        output="sigmoid",
        l2=0.0,
        init="auto",
        optimizer=optimizer,
        options=options or {},
        batch_size=batch_size,
        batch_growth=1.0,
        seed=seed,
        max_iter=100,
        max_epochs=None,
        max_grad_evals=None,
        max_seconds=None,
        eval_every=50,
        tol=None,
    )


def rows(accuracies, seconds, test=None):
    """Evaluation rows at iterations 0, 50, 100, ... with the given accuracies."""
    out = []
    for i, (acc, sec) in enumerate(zip(accuracies, seconds)):
        row = {k: 0.0 for k in METRICS}
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
    summary = report.summary_table(frame, target=0.75).set_index("optimizer")
    gd = summary.loc["gd"]
    assert gd["seeds"] == 3 and gd["ok"] == 3
    assert gd["val_mean"] == pytest.approx(0.8)  # (0.8 + 0.9 + 0.7) / 3
    assert gd["val_std"] == pytest.approx(0.1)  # sqrt(((0)^2 + 0.1^2 + 0.1^2) / 2)
    # t(0.975, df=2) = 4.302653; half-width = 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert gd["val_ci95"] == pytest.approx(0.248414, abs=1e-6)
    # first evaluation at >= 0.75: seed 1 at 2.0 s, seed 2 at 3.0 s, seed 3 never
    assert gd["reached"] == 2 and gd["seconds_to_target"] == pytest.approx(2.5)
    assert gd["grad_evals_to_target"] == pytest.approx(75)  # median of 100 and 50
    assert gd["train_seconds"] == pytest.approx(4.0)  # mean of 2, 6, 4
    assert gd["total_seconds"] == pytest.approx(12.0)
    adam = summary.loc["adam"]
    assert adam["seeds"] == 3 and adam["ok"] == 1  # failed and diverged are counted
    assert adam["val_mean"] == pytest.approx((0.95 + 0.2) / 2)  # the failed run has none
    assert adam["reached"] == 1 and adam["seconds_to_target"] == pytest.approx(0.5)


def test_performance_profile_ratios_by_hand(hand_made):
    frame = results.load(hand_made)
    prof = report.performance_profiles(frame, target=0.75).set_index("optimizer")
    # adam: 1 of 3 seeds reached, fewer than half: infinite time, as AlgoPerf counts it
    assert math.isinf(prof.loc["adam", "seconds"])
    assert prof.loc["gd", "seconds"] == pytest.approx(2.5) and prof.loc["gd", "ratio"] == 1.0
    prof = report.performance_profiles(frame, target=0.5).set_index("optimizer")
    # adam: seed 1 reached 0.5 at 0.5 s (1 of 3 again: inf); gd: 1.0, 3.0, 2.0 -> median 2.0
    assert prof.loc["gd", "seconds"] == pytest.approx(2.0)


def test_failed_and_diverged_runs_are_listed(hand_made):
    bad = report.status_table(results.load(hand_made))
    assert sorted(bad["status"]) == ["diverged", "failed"]
    assert "RuntimeError: boom" in bad["message"].tolist()


def test_figures_are_figures(hand_made):
    frame = results.load(hand_made)
    for fig in (
        report.convergence_figure(frame, "train_seconds", "val_accuracy"),
        report.convergence_figure(frame, "epoch", "train_cost"),
        report.accuracy_distribution_figure(frame),
        report.performance_profile_figure(frame, target=0.75),
    ):
        assert isinstance(fig, Figure)


def test_one_colour_per_optimizer_everywhere():
    a = report.colours(["adam", "gd"])
    b = report.colours(["gd", "myplugin", "adam", "cg"])
    assert a["adam"] == b["adam"] and a["gd"] == b["gd"]
    assert len({tuple(c) for c in b.values()}) == len(b)


def test_report_builds_with_failed_and_diverged_runs(hand_made, tmp_path):
    out = tmp_path / "rep"
    page = report.build_report(hand_made, out, target=0.75)
    md = (out / "report.md").read_text()
    assert "Runs that did not complete (2)" in md and "RuntimeError: boom" in md
    assert "1 diverged" in md and "1 failed" in md
    assert "The post's table" in md  # gd on [25], batch 50, 100 iterations: the post's setting
    for name in (
        "accuracy-vs-train_seconds",
        "accuracy-vs-epoch",
        "accuracy-vs-grad_evals",
        "cost-vs-train_seconds",
        "final-accuracy",
        "performance-profile",
    ):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").exists()
    assert page.read_text().count("data:image/png;base64,") == 8


def test_blog_table_when_the_setting_is_the_posts(tmp_path):
    out = tmp_path / "blog"
    for opt, acc in (("gd", 0.83), ("cg", 0.86), ("rmsprop_blog", 0.2)):
        results.write_run(
            out, spec(opt, 1), rows([0.1, 0.5, acc], [0, 0.1, 0.284]), "completed", "", {}
        )
    table = report.blog_table(results.load(out)).set_index("optimizer")
    gd = table.loc["GD (learning rate 0.3)"]
    assert gd["post_accuracy"] == 0.8316 and gd["accuracy_mean"] == pytest.approx(0.83)
    assert gd["time_fraction"] == pytest.approx(0.284 / 284)
    report.build_report(out)
    assert "The post's table, reproduced" in (out / "report.md").read_text()


def test_report_on_a_partly_finished_experiment(hand_made, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(hand_made, part)
    for f in sorted((part / "runs").glob("*.parquet"))[:3]:
        f.unlink()
    (part / "runs" / ".half.parquet.123.tmp").write_bytes(b"PAR1 half written")
    report.build_report(part)
    assert (part / "report.html").exists()


def test_an_empty_results_folder_is_a_clear_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(NnbenchError, match="no runs to report"):
        report.build_report(tmp_path)
    with pytest.raises(NnbenchError, match="no such results folder"):
        report.build_report(tmp_path / "missing")


# -- the regression check --------------------------------------------------------------


def lower_accuracy(folder, optimizer, by):
    """Rewrite one configuration's run files with a lower final validation accuracy."""
    for path in (folder / "runs").glob("*.parquet"):
        meta = results.read_meta(path)
        if meta["spec"]["optimizer"] != optimizer:
            continue
        table = pq.read_table(path)
        frame = table.to_pandas()
        frame.loc[frame.index[-1], "val_accuracy"] -= by
        import pyarrow as pa

        new = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(new.replace_schema_metadata(table.schema.metadata), path)


def test_check_passes_unchanged_and_fails_naming_the_regression(hand_made, tmp_path):
    base = check.write_baseline(hand_made, tmp_path / "baseline.json")
    assert check.check(hand_made, base).ok
    lower_accuracy(hand_made, "gd", 0.2)  # mean 0.8 -> 0.6, baseline sd 0.1 -> allowed 0.3
    assert check.check(hand_made, base).ok
    lower_accuracy(hand_made, "gd", 0.2)  # now 0.4: a drop of 0.4 > 3 sd
    result = check.check(hand_made, base)
    assert not result.ok and result.regressions["label"].tolist() == ["gd"]
    text = check.format_check(result)
    assert "1 configuration(s) regressed" in text and "gd | mnist | hidden 25" in text
    assert check.check(hand_made, base, tol=0.5).ok  # an absolute tolerance


def test_check_reports_configurations_on_one_side_only(hand_made, tmp_path):
    base = check.write_baseline(hand_made, tmp_path / "baseline.json")
    for path in (hand_made / "runs").glob("*.parquet"):
        if results.read_meta(path)["spec"]["optimizer"] == "adam":
            path.unlink()
    results.write_run(hand_made, spec("nesterov", 1), rows([0.1, 0.9], [0, 1]), "completed", "", {})
    result = check.check(hand_made, base)
    assert not result.ok
    text = check.format_check(result)
    assert "missing from the results" in text and "adam" in text
    assert "new (not in the baseline" in text and "nesterov" in text


@pytest.mark.parametrize(
    "content, match",
    [
        ("not json", "not JSON"),
        (json.dumps({"configurations": []}), "not an nnbench baseline"),
        (json.dumps({"format": "nnbench-baseline", "version": 99}), "version 99"),
        (
            json.dumps(
                {"format": "nnbench-baseline", "version": 1, "configurations": [{"label": "gd"}]}
            ),
            "malformed baseline",
        ),
        (
            json.dumps(
                {
                    "format": "nnbench-baseline",
                    "version": 1,
                    "configurations": [
                        {
                            "label": "gd",
                            "dataset": "mnist",
                            "hidden": "25",
                            "batch_size": 50,
                            "dtype": "float64",
                            "mean": "high",
                            "std": 0,
                            "n_seeds": 1,
                        }
                    ],
                }
            ),
            "non-numeric",
        ),
    ],
)
def test_a_baseline_of_the_wrong_format_is_a_clear_error(hand_made, tmp_path, content, match):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(NnbenchError, match=match):
        check.check(hand_made, path)


def test_check_cli_exit_codes(hand_made, tmp_path, capsys):
    from nnbench.cli import main

    base = tmp_path / "b.json"
    assert main(["baseline", str(hand_made), "-o", str(base)]) == 0
    assert main(["check", str(hand_made), "--baseline", str(base)]) == 0
    lower_accuracy(hand_made, "gd", 0.5)
    assert main(["check", str(hand_made), "--baseline", str(base)]) == 1
    assert "regressed" in capsys.readouterr().out
    assert main(["check", str(hand_made), "--baseline", str(tmp_path / "none.json")]) == 2


# -- the report in a browser ------------------------------------------------------------


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


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
    assert 'data-figures="8/8"' in dom  # every embedded figure decoded
    n_rows = int(dom.split('data-table-rows="')[1].split('"')[0])
    expected = page.read_text().count("</td></tr>")  # body rows written
    assert n_rows == expected > 0  # every table row rendered
