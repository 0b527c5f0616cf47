"""Studies over several workloads: ``[[workload]]`` tables, each a dataset with its own
networks, batch sizes, settings and target; a cell is (workload, network, batch size)
in the tuning choice, the report, the profile and the export."""

import json

import pandas as pd
import pytest

from nnbench import experiment, export, report, results, study, tune
from nnbench.errors import ConfigError
from nnbench.report import tables

WORKLOADS = [
    {"data": {"dataset": "digits"}, "model": {"hidden": [[8], [4]]},
     "grid": {"batch_size": [32]}, "target": 0.5},
    {"data": {"dataset": "synthetic", "options": {"noise": 0.2}},
     "model": {"hidden": [[6]], "activation": "tanh"},
     "grid": {"batch_size": [16]}, "budget": {"max_iter": 30}},
]  # fmt: skip


def two_workloads(tune_it=True, **extra):
    raw = {
        "name": "two",
        "model": {"output": "softmax"},
        "grid": {"seeds": [1, 2]},
        "budget": {"max_iter": 20},
        "eval": {"every": 10},
        "workload": WORKLOADS,
        "optimizer": [
            {"name": "gd", "learning_rate": {"log_uniform": [0.05, 1.0]} if tune_it else 0.3},
            {"name": "cg", "mb_maxiter": 2},
        ],
        **extra,
    }
    if tune_it:
        raw["tune"] = {"trials": 2, "seed": 0, "final_seeds": [11, 12]}
    return experiment.validate(raw, "two.toml")


def test_each_workload_takes_the_top_level_and_lays_its_own_over_it():
    exp = two_workloads(tune_it=False)
    digits, blobs = exp.workloads
    assert [w.name for w in exp.workloads] == ["digits", "synthetic[noise=0.2]"]
    assert digits.values["output"] == blobs.values["output"] == "softmax"  # shared
    assert (digits.values["activation"], blobs.values["activation"]) == ("sigmoid", "tanh")
    assert (digits.values["max_iter"], blobs.values["max_iter"]) == (20, 30)
    assert (digits.target, blobs.target) == (0.5, None)
    assert [(w.name, h, b) for w, h, b in exp.cells()] == [
        ("digits", (8,), 32), ("digits", (4,), 32), ("synthetic[noise=0.2]", (6,), 16),
    ]  # fmt: skip
    runs = exp.runs()
    assert len(runs) == exp.n_runs == 3 * 2 * 2  # cells x optimizers x seeds
    assert {(r.workload, r.hidden, r.activation) for r in runs} == {
        ("digits", (8,), "sigmoid"), ("digits", (4,), "sigmoid"),
        ("synthetic[noise=0.2]", (6,), "tanh"),
    }  # fmt: skip
    assert len({r.run_id for r in runs}) == len(runs)


def test_a_file_without_workloads_is_one_workload_and_its_runs_keep_their_ids():
    raw = {"name": "one", "data": {"dataset": "digits"}, "budget": {"max_iter": 5},
           "optimizer": [{"name": "gd"}]}  # fmt: skip
    exp = experiment.validate(raw)
    (only,) = exp.workloads
    assert only.name == "digits" and only.values == exp.values
    spec = exp.runs()[0]
    assert spec.workload == "digits"
    assert "workload" not in spec.identity()  # the name is derived: no id moves


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: w.append({"data": {"dataset": "digits"}}), "names the workload digits again"),
        (lambda w: w[0].update(seeds=[1]), "unknown key seeds"),
        (lambda w: w[0].update(grid={"seeds": [3]}), "seeds: is the study's"),
        (lambda w: w[0].update(target=1.5), "target: must be"),
        (lambda w: w[0].update(model={"hidden": 8}), "#1: \\[model\\] hidden"),
        (lambda w: w[1]["data"].update(options={"nosie": 0.1}), "#2: \\[data.options\\]"),
    ],
)
def test_a_bad_workload_table_is_one_clear_error_naming_it(change, message):
    raw = {
        "name": "bad",
        "workload": [{"data": {"dataset": "digits"}}, {"data": {"dataset": "synthetic"}}],
        "optimizer": [{"name": "gd"}],
    }
    change(raw["workload"])
    with pytest.raises(ConfigError, match=message):
        experiment.validate(raw, "bad.toml")
    with pytest.raises(ConfigError, match="array of tables"):
        experiment.validate({**raw, "workload": {"data": {}}}, "bad.toml")


def test_another_dataset_does_not_inherit_the_top_levels_dataset_options():
    raw = {
        "name": "opts",
        "data": {"dataset": "synthetic", "options": {"noise": 0.3}},
        "workload": [{}, {"data": {"dataset": "digits"}}],
        "optimizer": [{"name": "gd"}],
    }
    exp = experiment.validate(raw)
    assert [w.name for w in exp.workloads] == ["synthetic[noise=0.3]", "digits"]


def test_a_tuned_study_chooses_per_workload_and_reports_each_workloads_target(tmp_path):
    exp = two_workloads()
    summary = study.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    # gd: 2 trials x 2 seeds x 3 cells + 2 finals x 3 cells; cg: 2 finals x 3 cells
    assert summary.n_done == 12 + 6 + 6 and summary.statuses == {"completed": 24}
    chosen = tune.read_choices(tmp_path)
    assert sorted((c["optimizer"], c["workload"], tuple(c["hidden"])) for c in chosen) == [
        ("cg", "digits", (4,)), ("cg", "digits", (8,)), ("cg", "synthetic[noise=0.2]", (6,)),
        ("gd", "digits", (4,)), ("gd", "digits", (8,)), ("gd", "synthetic[noise=0.2]", (6,)),
    ]  # fmt: skip
    frame = results.load(tmp_path)
    last = results.final_rows(frame)
    trials = last[(last["phase"] == "trial") & (last["workload"] == "digits")]
    best = trials[trials["hidden"] == "8"].groupby("trial")["val_accuracy"].mean().idxmax()
    gd8 = next(c for c in chosen if c["optimizer"] == "gd" and c["hidden"] == [8])
    assert gd8["trial"] == best  # chosen on the workload's own trials

    shown = tune.reported(frame, chosen)
    targets = tables.cell_targets(shown, report.workload_targets(tmp_path))
    assert targets[("digits", "8", 32.0)] == targets[("digits", "4", 32.0)] == 0.5  # the file's
    rule = results.final_rows(shown).query("workload == 'synthetic[noise=0.2]'")
    expected = 0.99 * rule.groupby("config_id")["val_accuracy"].median().max()
    assert targets[("synthetic[noise=0.2]", "6", 16.0)] == pytest.approx(expected)  # the rule

    report.build_report(tmp_path, figures=["final-accuracy"])
    text = (tmp_path / "report.md").read_text()
    assert "digits, hidden 8, batch 32: 0.5000 (the file's)" in text
    assert "synthetic[noise=0.2], hidden 6, batch 16: " in text
    assert "## By workload" in text

    written = export.export(tmp_path, tmp_path / "export", formats=("csv",))
    summary_csv = pd.read_csv(next(p for p in written if p.name == "summary.csv"))
    assert set(summary_csv["workload"]) == {"digits", "synthetic[noise=0.2]"}
    meta = json.loads((tmp_path / "export" / "algoperf" / "workload_targets.json").read_text())
    assert meta["digits_hidden-8_batch-32"]["target"] == 0.5
    assert "synthetic-noise=0.2_hidden-6_batch-16" in meta


def test_a_command_line_override_reaches_every_workload():
    """``--epochs 2`` or ``--hidden 5`` on a file with workloads means it for all of
    them: a workload's own value of the key gives way, as the top level's does."""
    raw = {"name": "two", "grid": {"seeds": [1]}, "workload": WORKLOADS,
           "optimizer": [{"name": "gd"}]}  # fmt: skip
    over = experiment.apply_overrides(
        raw, {"budget.max_epochs": 2, "model.hidden": [[5]], "grid.batch_size": [8]}
    )
    exp = experiment.validate(over)
    for w in exp.workloads:
        assert (w.values["max_epochs"], w.values["max_iter"]) == (2, None)
        assert (w.hidden, w.batch_size) == ([(5,)], [8])
    assert exp.workloads[1].values["activation"] == "tanh"  # what was not overridden stays
    assert WORKLOADS[1]["budget"] == {"max_iter": 30}  # the file's tables are not changed
