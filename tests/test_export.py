"""nnbench export: every table of the report as data, and AlgoPerf's layout."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnbench import export, results, stats, tune
from nnbench.cli import main
from nnbench.report import tables

BLOG = Path(__file__).resolve().parents[1] / "results" / "blog"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert main(["export", str(BLOG), "--out", str(out), "--format", "csv,json,latex"]) == 0
    return out


def test_every_table_in_every_format_with_the_reports_numbers(exported):
    frame = results.load(BLOG)
    shown = tune.reported(frame, None)
    summary = tables.summary_table(shown, None, tables.time_axis(frame))
    csv = pd.read_csv(exported / "summary.csv")
    assert csv["val_mean"].to_numpy() == pytest.approx(summary["val_mean"].to_numpy())
    assert csv["val_low"].to_numpy() == pytest.approx(summary["val_low"].to_numpy())
    pairs = json.loads((exported / "pairwise.json").read_text())
    row = next(r for r in pairs if (r["a"], r["b"]) == ("gd", "momentum"))
    assert row["verdict"] == "momentum" and row["seeds_higher"] == 5 and row["low"] > 0
    tex = (exported / "pairwise.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"seeds\_higher" in tex
    for name in ("algoperf-scores", "time-to-target", "iqm", "runs", "evaluations"):
        assert (exported / f"{name}.csv").is_file(), name
    assert not (exported / "evaluations.tex").exists()  # thousands of rows: no LaTeX table
    runs = pd.read_csv(exported / "runs.csv")
    assert len(runs) == 30 and {"optimizer", "seed", "val_accuracy", "options"} <= set(runs)
    assert len(pd.read_csv(exported / "evaluations.csv")) == len(frame)


def test_the_algoperf_layout_scores_as_the_report_does(exported):
    """Read back as AlgoPerf's get_experiment_df reads an experiment folder (one
    eval_measurements.csv per submission, study, workload and trial), then
    scored by AlgoPerf's rule: the report's scores. (AlgoPerf's own
    scoring/performance_profile.py, run on the export with its targets from
    workload_targets.json, gives the same scores: see the README.)"""
    layout = exported / "algoperf"
    meta = json.loads((layout / "workload_targets.json").read_text())
    rows = []
    for path in sorted(layout.glob("*/*/*/trial_*/eval_measurements.csv")):
        sub, study, work, trial = path.parts[-5:-1]
        m = pd.read_csv(path)
        for i, (t, acc) in enumerate(zip(m["accumulated_submission_time"],
                                         m["validation/accuracy"])):  # fmt: skip
            rows.append({"submission": sub, "workload": work, "study": study, "trial": trial,
                         "eval_index": i, "score": acc, "time": t})  # fmt: skip
    trials = pd.DataFrame(rows)
    targets = pd.Series({w: m["target"] for w, m in meta.items()})
    times = stats.algoperf_times(trials, targets, "time")
    _, rho = stats.algoperf_profile(times)
    scores = stats.algoperf_score(rho)
    reported = pd.read_csv(exported / "algoperf-scores.csv").set_index("optimizer")["score"]
    assert scores.reindex(reported.index).to_numpy() == pytest.approx(reported, abs=1e-3)
    assert np.isfinite(reported).all() and len(reported) == 6


def test_latex_is_escaped_and_bad_formats_are_one_line(tmp_path, capsys):
    tex = export.latex_table(pd.DataFrame({"name": ["a_b & 50%"], "x": [0.123456]}), "t")
    assert r"a\_b \& 50\%" in tex and "0.1235" in tex
    assert main(["export", str(BLOG), "--out", str(tmp_path), "--format", "xls"]) == 2
    assert "--format takes csv, json, latex" in capsys.readouterr().err
