"""nnbench compare: one deciding metric, Holm's correction, a margin, rounding, pairing.

Most cases are runs written by hand, so that every number is known; the
decision rule's error rate is simulated in tests/test_stats.py.
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from nnbench import compare, experiment, results, study, tune
from nnbench.cli import main
from nnbench.errors import NnbenchError

EXP = experiment.validate(
    {
        "name": "cmp",
        "data": {"dataset": "digits"},
        "model": {"hidden": [[16]]},
        "grid": {"batch_size": [32]},
        "budget": {"max_epochs": 3},
        "eval": {"every": 10},
        "optimizer": [{"name": "gd"}],
    }
)


def write(folder, accuracies, optimizer="gd", options=None, status="completed", **spec_kw):
    """One run per seed (1, 2, ...) with these final validation accuracies."""
    for seed, acc in enumerate(accuracies, start=1):
        if acc is None:
            continue
        spec = EXP.spec(optimizer, options or {}, hidden=(16,), batch_size=32, seed=seed)
        if spec_kw:
            spec = experiment.RunSpec(**{**spec.__dict__, **spec_kw})
        row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 10, "val_accuracy": acc}
        results.write_run(folder, spec, [] if status == "failed" else [row], status, "", {})


def verdicts(comparison, metric="val_accuracy"):
    table = comparison.table
    return dict(zip(table.loc[table["metric"] == metric, "configuration"],
                    table.loc[table["metric"] == metric, "verdict"]))  # fmt: skip


def test_a_grid_run_twice_is_identical(tmp_path):
    exp = experiment.validate(
        {
            "name": "a",
            "data": {"dataset": "digits"},
            "model": {"hidden": [[16]]},
            "grid": {"batch_size": [32], "seeds": [1, 2, 3]},
            "budget": {"max_epochs": 2},
            "optimizer": [{"name": "gd", "learning_rate": 0.5}],
        }
    )
    study.run_experiment(exp, tmp_path / "a", log=None)
    study.run_experiment(exp, tmp_path / "b", n_jobs=2, log=None)
    same = compare.compare(tmp_path / "a", tmp_path / "b")
    assert set(same.table["verdict"]) == {"identical"}
    assert compare.exit_code(same, "different") == 0


def test_verdicts_by_hand(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.80, 0.82, 0.81])
    write(b, [0.85, 0.86, 0.87])  # differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01
    comparison = compare.compare(a, b)
    row = comparison.table.set_index("metric").loc["val_accuracy"]
    assert row["diff"] == pytest.approx(0.05) and row["verdict"] == "better"
    # one configuration: Holm's adjustment is the p-value itself
    p = scipy_stats.ttest_rel([0.85, 0.86, 0.87], [0.80, 0.82, 0.81]).pvalue
    assert row["p_holm"] == pytest.approx(p)
    assert comparison.table.set_index("metric").loc["train_cost", "verdict"] == "identical"
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["compare", str(b), str(a)]) == 1  # from B to A, accuracy got worse
    out = capsys.readouterr().out
    assert "worse" in out and out.splitlines()[0].startswith("val_accuracy decides")


def test_a_difference_within_the_margin_is_equivalent_not_worse(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.800, 0.820, 0.810, 0.830, 0.790])
    write(b, [0.7995, 0.8194, 0.8096, 0.8295, 0.7894])  # every seed 0.0004 to 0.0006 lower
    tight = compare.compare(a, b)
    assert verdicts(tight) == {"gd | digits | hidden 16 | batch 32": "equivalent"}
    assert compare.exit_code(tight, "worse") == 0 and compare.exit_code(tight, "different") == 0
    strict = compare.compare(a, b, margin=0.0001)  # nothing is too small to matter
    assert verdicts(strict) == {"gd | digits | hidden 16 | batch 32": "worse"}
    assert compare.exit_code(strict, "worse") == 1
    pct = compare.compare(a, b, margin="1%")  # 1% of A's mean, 0.0081
    assert pct.table.set_index("metric").loc["val_accuracy", "margin"] == pytest.approx(0.0081)
    # spread: never from the runs compared; from a calibration folder's seeds
    with pytest.raises(NnbenchError, match="--calibration"):
        compare.compare(a, b, margin="spread")
    calibration = tmp_path / "c"
    write(calibration, [0.80, 0.81, 0.82])  # sd 0.01
    spread = compare.compare(a, b, margin="spread", calibration=calibration)
    assert spread.table.set_index("metric").loc["val_accuracy", "margin"] == pytest.approx(0.01)
    assert verdicts(spread) == {"gd | digits | hidden 16 | batch 32": "equivalent"}
    for bad in ("-1", "x%", "many"):
        with pytest.raises(NnbenchError, match="--margin"):
            compare.compare(a, b, margin=bad)


def test_only_the_deciding_metric_decides_unless_asked(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.8, 0.8])
    write(b, [0.8, 0.8, 0.8])
    for path in (b / "runs").glob("*.parquet"):  # every training cost 5% higher in B
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        frame = table.to_pandas()
        frame["train_cost"] *= 1.05 + 0.001 * frame["seed"]
        new = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(new.replace_schema_metadata(table.schema.metadata), path)
    comparison = compare.compare(a, b)
    assert comparison.table.set_index("metric").loc["train_cost", "verdict"] == "worse"
    assert compare.exit_code(comparison, "worse") == 0  # reported, deciding nothing
    assert compare.exit_code(compare.compare(a, b, all_metrics=True), "worse") == 1
    assert compare.exit_code(compare.compare(a, b, metric="train_cost"), "worse") == 1


def test_holm_over_configurations(tmp_path):
    """Three configurations, each with a moderate difference: uncorrected, the
    smallest p (0.02) would be 'better'; after Holm (x3) it is not."""
    a, b = tmp_path / "a", tmp_path / "b"
    for lr, shift in ((0.1, (0.010, 0.020, 0.005, 0.017)), (0.2, (0.0, 0.02, -0.01, 0.01)),
                      (0.3, (0.01, -0.01, 0.0, 0.005))):  # fmt: skip
        base = [0.80, 0.82, 0.81, 0.83]
        write(a, base, options={"learning_rate": lr})
        write(b, [x + d for x, d in zip(base, shift)], options={"learning_rate": lr})
    table = compare.compare(a, b).table
    acc = table[table["metric"] == "val_accuracy"].set_index("configuration")
    first = acc.loc["gd[learning_rate=0.1] | digits | hidden 16 | batch 32"]
    assert first["p_holm"] == pytest.approx(3 * first["p"])  # the smallest of three p-values
    assert first["p"] < 0.05 < first["p_holm"] and first["verdict"] != "better"
    assert set(acc["verdict"]) <= {"better", "inconclusive", "equivalent"}


def test_differences_within_rounding_are_identical_and_never_tested(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.7, 0.9])
    write(b, [0.8 + 1e-16, 0.7, 0.9 - 1e-16])  # a last-digit difference: not a p-value
    row = compare.compare(a, b).table.set_index("metric").loc["val_accuracy"]
    assert row["verdict"] == "identical" and math.isnan(row["p"])


def test_missing_seeds_are_reported_and_fail_only_when_asked(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.7, 0.9])
    write(b, [0.8, 0.7, None])  # seed 3's run deleted from B
    comparison = compare.compare(a, b)
    row = comparison.table.set_index("metric").loc["val_accuracy"]
    assert row["n"] == 2 and row["unpaired"] == "seeds only in A: 3"
    assert compare.exit_code(comparison, "worse") == 0
    assert compare.exit_code(comparison, "different") == 1
    assert main(["compare", str(a), str(b), "--fail-on", "different"]) == 1
    assert "(seeds only in A: 3)" in capsys.readouterr().out


def test_a_seed_that_failed_only_in_b_is_worse_and_unpaired_configurations_are_named(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.8, 0.8])
    write(b, [0.8, None, 0.8])
    write(b, [None, 0.5, None], status="failed")
    write(a, [0.8, 0.8, 0.8], optimizer="adam")
    comparison = compare.compare(a, b)
    ended = comparison.table.set_index("metric").loc["ended normally"]
    assert ended["verdict"] == "worse" and "failed only in B: 2" in ended["unpaired"]
    assert comparison.only == {"A": ["adam | digits | hidden 16 | batch 32"], "B": []}
    assert compare.exit_code(comparison, "worse") == 1
    assert compare.exit_code(compare.compare(a, a), "different") == 0


def test_ignore_options_pairs_settings_and_refuses_an_option_grid(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.8, 0.8], options={"learning_rate": 0.1})
    write(b, [0.8, 0.8, 0.8], options={"learning_rate": 0.2})
    paired = compare.compare(a, b, ignore_options=True)
    name = "gd[learning_rate=0.1] | digits | hidden 16 | batch 32 -> gd[learning_rate=0.2]"
    assert verdicts(paired) == {name: "identical"}
    write(b, [0.7, 0.7, 0.7], options={"learning_rate": 0.3})  # B now holds an option grid
    with pytest.raises(NnbenchError, match=r"--ignore-options.*B holds 2 settings"):
        compare.compare(a, b, ignore_options=True)
    assert main(["compare", str(a), str(b), "--ignore-options"]) == 2


def tuned_folder(folder, chosen_lr, accuracies, trial):
    """A tuned study's final runs by hand, and its tune.json naming the choice."""
    for seed, acc in zip((101, 102, 103), accuracies):
        spec = EXP.spec("gd", {"learning_rate": chosen_lr}, "final", trial, hidden=(16,),
                        batch_size=32, seed=seed)  # fmt: skip
        row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 10, "val_accuracy": acc}
        results.write_run(folder, spec, [row], "completed", "", {})
    chosen = [{"optimizer": "gd", "hidden": [16], "batch_size": 32, "trial": trial,
               "options": {"learning_rate": chosen_lr}, "searched": {"learning_rate": chosen_lr},
               "val_accuracy": 0.8, "edge": []}]  # fmt: skip
    (folder / tune.TUNE_FILE).write_text(json.dumps({"chosen": chosen}))


def test_tuned_studies_are_paired_by_their_current_finals(tmp_path):
    """Each side chose its own setting (another trial, another rate): the finals
    of gd in the cell pair up, seed by seed; the trial index is not a pairing."""
    a, b = tmp_path / "a", tmp_path / "b"
    tuned_folder(a, 0.1, (0.80, 0.81, 0.82), trial=3)
    tuned_folder(b, 0.3, (0.80, 0.81, 0.82), trial=5)
    # a stale final of B's earlier choice, at A's trial index: never paired
    tuned_folder(b, 0.1, (0.1, 0.1, 0.1), trial=3)
    chosen = [{"optimizer": "gd", "hidden": [16], "batch_size": 32, "trial": 5,
               "options": {"learning_rate": 0.3}, "searched": {}, "val_accuracy": 0.8,
               "edge": []}]  # fmt: skip
    (b / tune.TUNE_FILE).write_text(json.dumps({"chosen": chosen}))
    comparison = compare.compare(a, b)
    assert verdicts(comparison) == {"gd (tuned) | digits | hidden 16 | batch 32": "identical"}
    assert comparison.only == {"A": [], "B": []}


def test_names_are_never_cut(tmp_path, capsys):
    a = tmp_path / "a"
    write(a, [0.8, 0.8], options={"learning_rate": 0.123456789, "learning_rate_decay": 0.99999})
    main(["compare", str(a), str(a)])
    out = capsys.readouterr().out
    name = (
        "gd[learning_rate=0.123456789,learning_rate_decay=0.99999] | digits | hidden 16 | batch 32"
    )
    assert name in out


def test_a_baselines_floors_count_as_rounding(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.8, 0.7, 0.9])
    write(b, [0.8003, 0.7, 0.9])
    spec = EXP.spec("gd", {}, hidden=(16,), batch_size=32, seed=1)
    floors = {m: [0.001] for m in ("train_cost", "val_accuracy", "val_cost", "test_accuracy",
                                   "test_cost")}  # fmt: skip
    base = {
        "format": "nnbench-baseline", "version": 3,
        "calibration": {"effect": 0.02, "alpha": 0.01},
        "configurations": [{
            "config_id": spec.config_id, "label": "gd", "kind": "chaotic", "horizon": -1,
            "noise": {}, "floors": floors, "dtype": "float64",
            "seeds": {"1": {"status": "completed", "work": {},
                            "rows": {k: [1.0] for k in ("iteration", "epoch", "samples",
                                                         "grad_evals", *floors)}}},
        }],
    }  # fmt: skip
    base["configurations"][0]["seeds"]["1"]["rows"]["val_accuracy"] = [0.8]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base))
    name = "gd | digits | hidden 16 | batch 32"
    assert verdicts(compare.compare(a, b, baseline=path))[name] == "identical"
    assert verdicts(compare.compare(a, b))[name] != "identical"


def test_a_folder_with_itself_is_no_difference_even_without_pairs(tmp_path):
    write(tmp_path, [0.8, 0.8, 0.8])
    comparison = compare.compare(tmp_path, tmp_path, target=0.99)  # no seed reaches it
    table = comparison.table.set_index("metric")
    assert table.loc["grad_evals_to_target", "verdict"] == "no pairs"
    assert compare.exit_code(comparison, "different") == 0


def test_a_real_regression_is_worse_on_real_runs(tmp_path):
    """GD's step doubled past stability on digits: every seed's accuracy falls."""

    def exp(lr, name):
        return experiment.validate({
            "name": name, "data": {"dataset": "digits"}, "model": {"hidden": [[16]]},
            "grid": {"batch_size": [32], "seeds": [1, 2, 3, 4]}, "budget": {"max_epochs": 2},
            "optimizer": [{"name": "gd", "learning_rate": lr}],
        })  # fmt: skip

    study.run_experiment(exp(0.5, "a"), tmp_path / "a", n_jobs=2, log=None)
    study.run_experiment(exp(0.02, "b"), tmp_path / "b", n_jobs=2, log=None)
    comparison = compare.compare(tmp_path / "a", tmp_path / "b", ignore_options=True)
    assert set(verdicts(comparison).values()) == {"worse"}
    assert np.all(comparison.table["n"] == 4)


# -- the cases a regression check must get right, on the committed blog grid ---------------------

BLOG = Path(__file__).resolve().parents[1] / "results" / "blog"


def edit_runs(folder, change):
    """Rewrite every run file of ``folder`` with ``change(frame)`` (its metadata kept)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in sorted((folder / "runs").glob("*.parquet")):
        table = pq.read_table(path)
        frame = change(table.to_pandas())
        new = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(new.replace_schema_metadata(table.schema.metadata), path)


def blog_copy(tmp_path, name="b"):
    out = tmp_path / name
    shutil.copytree(BLOG, out)
    return out


def shifted(optimizer, column, shifts):
    """A change that moves ``column`` of ``optimizer``'s runs by ``shifts[seed]``."""

    def change(frame):
        if frame["optimizer"].iloc[0] == optimizer:
            frame[column] = frame[column] + shifts[int(frame["seed"].iloc[0])]
        return frame

    return change


SEEDS = (1234, 1, 2, 3, 4)


def test_a_shift_beyond_the_margin_in_every_seed_is_worse_under_both_margins(tmp_path):
    """GD 200 images lower (of 10,000) in all five seeds, and CG 100 to 300
    lower: ``worse`` and exit 1, under the default margin and under a
    calibrated ``spread`` (the seeds' standard deviation, 0.010 for GD and 0.013
    for CG, measured on another copy of the grid), whether or not the seeds
    moved by the same step."""
    b = blog_copy(tmp_path)
    edit_runs(b, shifted("gd", "val_accuracy", dict.fromkeys(SEEDS, -0.02)))
    cg = dict(zip(SEEDS, (-0.01, -0.015, -0.02, -0.025, -0.03)))
    edit_runs(b, shifted("cg", "val_accuracy", cg))
    calibration = blog_copy(tmp_path, "calibration")
    for margin in (None, "spread"):
        kw = {"margin": margin, "calibration": calibration} if margin else {}
        comparison = compare.compare(BLOG, b, **kw)
        got = verdicts(comparison)
        assert got["gd | mnist | hidden 25 | batch 50"] == "worse", margin
        assert got["cg | mnist | hidden 25 | batch 50"] == "worse", margin
        assert {v for k, v in got.items() if not k.startswith(("gd", "cg"))} == {"identical"}
        assert compare.exit_code(comparison, "worse") == 1
    # one image more in one seed changes nothing
    edit_runs(b, shifted("gd", "val_accuracy", {**dict.fromkeys(SEEDS, 0.0), 4: -0.0001}))
    assert verdicts(compare.compare(BLOG, b))["gd | mnist | hidden 25 | batch 50"] == "worse"


def test_an_identical_rerun_at_another_time_is_not_worse_on_time(tmp_path):
    """Two reruns of unchanged code: every accuracy the same, every training
    second 17% longer (load at the time of the second, the most identical reruns
    moved by in results/timing-reruns.md): not ``worse`` on the
    CPU seconds to a target, whose default margin (25%) is above what identical
    reruns at different times moved by; a 50% slowdown is ``worse``."""
    a, b = blog_copy(tmp_path, "a"), blog_copy(tmp_path, "b")

    def clocked(scale):
        def change(frame):
            frame["train_cpu_seconds"] = frame["train_seconds"] * scale
            return frame

        return change

    edit_runs(a, clocked(1.0))
    edit_runs(b, clocked(1.17))
    rerun = compare.compare(a, b, target=0.85, metric="train_cpu_seconds_to_target")
    decided = rerun.table[rerun.table["decides"]]
    assert "worse" not in set(decided["verdict"]) and compare.exit_code(rerun, "worse") == 0
    assert set(decided["verdict"]) & {"equivalent"}
    edit_runs(b, clocked(1.5))  # from the wall seconds: 50% above A
    slower = compare.compare(a, b, target=0.85, metric="train_cpu_seconds_to_target")
    assert compare.exit_code(slower, "worse") == 1


def test_folders_with_other_seeds_are_compared_unpaired(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.80, 0.82, 0.81, 0.83])
    write(b, [None, None, None, None, 0.70, 0.72, 0.71, 0.69])  # seeds 5 to 8
    comparison = compare.compare(a, b)
    row = comparison.table.set_index("metric").loc["val_accuracy"]
    assert row["test"] == "Welch t" and row["verdict"] == "worse" and row["n"] == 8
    ref = scipy_stats.ttest_ind([0.70, 0.72, 0.71, 0.69], [0.80, 0.82, 0.81, 0.83],
                                equal_var=False)  # fmt: skip
    assert row["p"] == pytest.approx(ref.pvalue)
    assert main(["compare", str(a), str(b)]) == 1
    assert "unpaired (Welch): 4 runs of A, 4 of B" in capsys.readouterr().out
    write(b, [None, None, None, None, 0.80, 0.82, 0.81, 0.83])
    same = compare.compare(a, b)
    assert verdicts(same)["gd | digits | hidden 16 | batch 32"] != "worse"


def test_a_seed_with_no_finite_value_only_in_b_is_worse(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, [0.80, 0.81, 0.82])
    write(b, [0.80, 0.81, float("nan")])
    comparison = compare.compare(a, b)
    row = comparison.table.set_index("metric").loc["val_accuracy"]
    assert (
        row["verdict"] == "worse"
        and "no finite val_accuracy only in B: seeds 3" in (row["unpaired"])
    )
    assert compare.exit_code(comparison, "worse") == 1
    assert compare.exit_code(comparison, "different") == 1
