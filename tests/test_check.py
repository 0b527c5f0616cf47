"""The regression gate: baselines that measure rounding, the seed-paired check, compare.

The gate's power against real bugs is measured by benchmarks/mutations.py
(results/mutations.md); here, each rule on a small grid of its own.
"""

import json
import math
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnbench import check, compare, grid, results, runner
from nnbench.cli import main
from nnbench.errors import NnbenchError


def experiment(seeds=(1, 2, 3, 4), optimizers=None, name="gate"):
    return grid.validate(
        {
            "name": name,
            "data": {"dataset": "digits"},
            "model": {"hidden": [[16]]},
            "grid": {"batch_size": [32], "seeds": list(seeds)},
            "budget": {"max_epochs": 3},
            "eval": {"every": 10},
            "optimizer": optimizers
            or [{"name": "gd", "learning_rate": 0.5}, {"name": "cg", "mb_maxiter": 5}],
        }
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A grid's results and its baseline (calibrated: the runs again, twice)."""
    folder = tmp_path_factory.mktemp("gate")
    runner.run_experiment(experiment(), folder / "results", n_jobs=2, log=None)
    check.write_baseline(folder / "results", folder / "baseline.json", n_jobs=2)
    return folder


@pytest.fixture
def results_dir(made, tmp_path):
    """A copy of the results, to spoil."""
    copy = tmp_path / "results"
    shutil.copytree(made / "results", copy, ignore=shutil.ignore_patterns("calibration"))
    return copy


def baseline(made):
    return json.loads((made / "baseline.json").read_text())


def test_the_baseline_measures_rounding_per_configuration(made):
    raw = baseline(made)
    assert raw["version"] == 2 and raw["environment"]["numpy"] == np.__version__
    kinds = {c["label"]: c for c in raw["configurations"]}
    gd, cg = kinds["gd[learning_rate=0.5]"], kinds["cg[mb_maxiter=5]"]
    # GD's trajectory does not move under rounding: every point is within the horizon
    assert gd["kind"] == "stable" and gd["horizon"] == len(gd["floors"]["train_cost"]) - 1
    assert max(gd["floors"]["val_accuracy"]) < 1e-12  # accuracy: no prediction moved
    # CG's line searches make it chaotic: only its first points are deterministic
    assert cg["kind"] == "chaotic" and 0 <= cg["horizon"] < len(cg["floors"]["train_cost"]) - 1
    assert cg["noise"]["val_accuracy"] > 0 and cg["min_seeds"]["val_accuracy"] >= 2
    assert sorted(gd["seeds"]) == ["1", "2", "3", "4"]
    assert len(gd["seeds"]["1"]["rows"]["iteration"]) == len(gd["floors"]["train_cost"])
    (made_for,) = (made / "results" / "calibration").iterdir()  # one set of results
    assert (made_for / "perturbed" / "runs").is_dir()


def test_calibration_is_reused_only_for_the_results_it_was_made_for(made, tmp_path):
    """A baseline after Ctrl-C reuses the calibration runs; a baseline of results
    the code has changed makes them again (stale ones would measure old against
    new code as 'rounding')."""
    folder = tmp_path / "results"
    shutil.copytree(made / "results", folder)
    log: list[str] = []
    check.make_baseline(folder, n_jobs=2, log=log.append)
    assert len(list((folder / "calibration").iterdir())) == 1
    assert not any("completed" in line for line in log)  # nothing ran again
    spoil(folder, "gd", 2, column="train_cost", by=1e-6)  # as a code change would
    log.clear()
    check.make_baseline(folder, n_jobs=2, log=log.append)
    assert len(list((folder / "calibration").iterdir())) == 2
    assert any("completed" in line for line in log)


def test_min_seeds_by_hand():
    # noise 0.01, effect 0.02, alpha 0.01: the smallest n with
    # (t(0.99, n-1) + t(0.8, n-1)) * 0.01 / sqrt(n) <= 0.02
    from scipy import stats

    n = check.min_seeds(0.01, 0.02, 0.01)
    need = lambda k: (stats.t.ppf(0.99, k - 1) + stats.t.ppf(0.8, k - 1)) * 0.01 / math.sqrt(k)  # noqa: E731
    assert need(n) <= 0.02 < need(n - 1)
    assert check.min_seeds(0.0, 0.02, 0.01) == 2


def test_unchanged_results_pass_in_both_modes(made):
    for strict in (False, True):
        result = check.check(made / "results", made / "baseline.json", strict=strict)
        assert result.ok, check.format_check(result)


def test_the_same_grid_run_another_way_passes_strictly(made, tmp_path):
    runner.run_experiment(experiment(), tmp_path / "again", n_jobs=1, log=None)
    result = check.check(tmp_path / "again", made / "baseline.json", strict=True)
    assert result.ok, check.format_check(result)


def spoil(folder, optimizer, seed, column="val_accuracy", by=0.0, status=None):
    """Rewrite one run file: its final ``column`` moved by ``by``, or its status."""
    for path in (folder / "runs").glob("*.parquet"):
        meta = results.read_meta(path)
        if meta["spec"]["optimizer"] != optimizer or meta["spec"]["values"]["seed"] != seed:
            continue
        table = pq.read_table(path)
        frame = table.to_pandas()
        frame.loc[frame.index[-1], column] += by
        if status is not None:
            frame["status"] = status
            meta["status"] = status
            meta["message"] = "RuntimeError: boom"
        new = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(new.replace_schema_metadata({b"nnbench": json.dumps(meta).encode()}), path)


def test_a_stable_drop_fails_and_a_rise_fails_only_strictly(made, results_dir):
    spoil(results_dir, "gd", 2, by=-1 / 359)  # one validation image more wrong
    result = check.check(results_dir, made / "baseline.json")
    assert (
        not result.ok
        and "gd[learning_rate=0.5] | hidden 16 | batch 32: final val_accuracy dropped"
        in result.problems[0]
    )
    spoil(results_dir, "gd", 2, by=+2 / 359)  # now one better than the baseline
    assert check.check(results_dir, made / "baseline.json").ok
    strict = check.check(results_dir, made / "baseline.json", strict=True)
    assert not strict.ok and "changed: re-baseline if intended" in " ".join(strict.problems)


def test_strict_mode_sees_a_change_anywhere_within_the_horizon(made, results_dir):
    spoil(results_dir, "gd", 3, column="train_cost", by=1e-9)  # the last point, by 1e-9
    assert check.check(results_dir, made / "baseline.json").ok  # no accuracy dropped
    strict = check.check(results_dir, made / "baseline.json", strict=True)
    assert not strict.ok and "seed 3: train_cost at iteration" in strict.problems[0]


def test_a_crashed_seed_fails_the_check(made, results_dir):
    spoil(results_dir, "gd", 2, status="failed")
    result = check.check(results_dir, made / "baseline.json")
    assert not result.ok
    assert result.problems == [
        "gd[learning_rate=0.5] | hidden 16 | batch 32: seed 2 failed "
        "(was completed): RuntimeError: boom"
    ]


def test_a_missing_final_metric_is_never_read_as_no_drop(made, results_dir, tmp_path):
    spoil(results_dir, "gd", 2, by=math.nan)  # the run recorded no final evaluation of it
    result = check.check(results_dir, made / "baseline.json")
    assert not result.ok and "seeds 2 have no final val_accuracy in the results" in str(
        result.problems
    )
    raw = baseline(made)
    gd = next(c for c in raw["configurations"] if c["label"].startswith("gd"))
    gd["seeds"]["3"]["rows"]["val_accuracy"] = [None] * len(gd["seeds"]["3"]["rows"]["iteration"])
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(raw))
    result = check.check(made / "results", edited)
    assert not result.ok and "the baseline has no final val_accuracy for seeds 3" in str(
        result.problems
    )


def test_other_seeds_or_configurations_are_clear_errors(made, tmp_path):
    runner.run_experiment(experiment(seeds=(3, 4, 5, 6)), tmp_path / "r", n_jobs=2, log=None)
    result = check.check(tmp_path / "r", made / "baseline.json")
    assert not result.ok
    text = " ".join(result.problems)
    assert "seeds 5,6 are not in the baseline (it has 1,2,3,4)" in text
    assert "seeds 1,2 are missing from the results" in text
    runner.run_experiment(
        experiment(optimizers=[{"name": "adam"}], name="other"), tmp_path / "o", log=None
    )
    result = check.check(tmp_path / "o", made / "baseline.json")
    text = " ".join(result.problems)
    assert "adam | hidden 16 | batch 32: not in the baseline" in text
    assert "gd[learning_rate=0.5] | hidden 16 | batch 32: missing from the results" in text


def test_a_chaotic_configuration_needs_the_seeds_its_test_asks_for(made, tmp_path):
    raw = baseline(made)
    for c in raw["configurations"]:
        if c["kind"] == "chaotic":
            c["min_seeds"] = {"val_accuracy": 10, "test_accuracy": 10}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(raw))
    result = check.check(made / "results", path)
    assert not result.ok
    assert "a paired test needs 10 seeds, the results have 4" in result.problems[0]


def test_an_old_or_malformed_baseline_is_one_clear_line(made, tmp_path, capsys):
    raw = baseline(made)
    cases = {
        "v1": {"format": "nnbench-baseline", "version": 1, "configurations": []},
        "empty": {**raw, "configurations": []},
        "list-label": {**raw, "configurations": [{**raw["configurations"][0], "label": ["gd"]}]},
        "infinite-noise": {
            **raw,
            "configurations": [
                {**raw["configurations"][0], "noise": {"val_accuracy": 1e999, "test_accuracy": 0}}
            ],
        },
        "huge-floor": {
            **raw,
            "configurations": [
                {
                    **raw["configurations"][0],
                    "floors": {
                        **raw["configurations"][0]["floors"],
                        "val_accuracy": [float("inf")],
                    },
                }
            ],
        },
    }
    first = raw["configurations"][0]
    seeds = first["seeds"]

    def spoiled(**changes):
        return {**raw, "configurations": [{**first, **changes}]}

    one = next(iter(seeds))
    huge_row = {
        **seeds[one]["rows"],
        "val_accuracy": [10**400] * len(seeds[one]["rows"]["iteration"]),
    }
    cases |= {
        "seed-01": spoiled(seeds={"01": seeds[one]}),
        "seed-arabic": spoiled(seeds={"\u0661": seeds[one]}),
        "huge-int": spoiled(seeds={**seeds, one: {**seeds[one], "rows": huge_row}}),
        "spec-list": spoiled(spec=[1]),
        "values-list": spoiled(spec={"values": [1]}),
        "empty-floors": spoiled(floors={m: [] for m in first["floors"]}),
        "horizon-beyond": spoiled(horizon=10**6),
    }
    expected = {
        "seed-01": "has a malformed seed '01'",
        "seed-arabic": "has a malformed seed",
        "huge-int": "has a non-number in seed",
        "spec-list": "has a malformed spec",
        "values-list": "has a malformed spec",
        "empty-floors": "one per evaluation",
        "horizon-beyond": "has a horizon 1000000 beyond",
        "v1": "a baseline of version 1, and this nnbench reads version 2",
        "empty": "no configurations",
        "list-label": "configuration 1 has no label of the right kind",
        "infinite-noise": "configuration 1 has no finite noise",
        "huge-floor": "configuration 1 has no floors for val_accuracy",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        code = main(["check", str(made / "results"), "--baseline", str(path), "--strict"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and expected[name] in err, (name, err)
        if name == "v1":
            assert "make one with `nnbench baseline RESULTS_DIR -o FILE`" in err


def test_a_baseline_of_unfinished_runs_is_refused(tmp_path):
    exp = experiment(optimizers=[{"name": "faulty", "fault": "raise"}], seeds=(1,))
    runner.run_experiment(exp, tmp_path / "r", log=None)
    with pytest.raises(NnbenchError, match="faulty\\[fault=raise\\] seed 1 failed"):
        check.write_baseline(tmp_path / "r", tmp_path / "b.json")
    assert not (tmp_path / "b.json").exists()


def test_a_baseline_is_valid_json_even_with_non_finite_values(tmp_path):
    exp = experiment(optimizers=[{"name": "faulty", "fault": "nan"}], seeds=(1, 2))
    runner.run_experiment(exp, tmp_path / "r", log=None)
    path = check.write_baseline(tmp_path / "r", tmp_path / "b.json")
    raw = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert raw["configurations"][0]["seeds"]["1"]["status"] == "diverged"
    assert check.check(tmp_path / "r", path).ok


def test_check_cli_exit_codes(made, results_dir, capsys):
    assert main(["check", str(results_dir), "--baseline", str(made / "baseline.json")]) == 0
    spoil(results_dir, "gd", 1, by=-0.05)
    assert main(["check", str(results_dir), "--baseline", str(made / "baseline.json")]) == 1
    out = capsys.readouterr().out
    assert "dropped" in out and out.splitlines()[-1].startswith("FAILED (drops)")


# -- compare -----------------------------------------------------------------------------------


def test_compare_tells_a_five_percent_step_change_from_no_change(tmp_path):
    gd = {"name": "gd", "learning_rate": 0.5}
    runner.run_experiment(experiment(optimizers=[gd]), tmp_path / "a", log=None)
    runner.run_experiment(
        experiment(optimizers=[gd], name="again"), tmp_path / "a2", n_jobs=2, log=None
    )
    same = compare.compare(tmp_path / "a", tmp_path / "a2")
    assert set(same["verdict"]) == {"identical"} and compare.exit_code(same, "different") == 0
    runner.run_experiment(
        experiment(optimizers=[{**gd, "learning_rate": 0.525}]), tmp_path / "b", log=None
    )
    changed = compare.compare(tmp_path / "a", tmp_path / "b", ignore_options=True)
    verdicts = changed.set_index("metric")["verdict"]
    assert "identical" not in set(verdicts)
    assert verdicts["train_cost"] in ("better", "worse")  # a 5% step moves every seed's cost
    assert (changed["n"] == 4).all()
    with pytest.raises(NnbenchError, match="share no configuration"):
        compare.compare(tmp_path / "a", tmp_path / "b")


def test_compare_by_hand_and_its_exit_codes(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    exp = experiment(optimizers=[{"name": "gd"}])
    for seed, (acc_a, acc_b) in enumerate([(0.80, 0.85), (0.82, 0.86), (0.81, 0.87)], start=1):
        spec = exp.spec("gd", {}, hidden=(16,), batch_size=32, seed=seed)
        for folder, acc in ((a, acc_a), (b, acc_b)):
            row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 10, "val_accuracy": acc}
            results.write_run(folder, spec, [row], "completed", "", {})
    table = compare.compare(a, b).set_index("metric")
    acc = table.loc["val_accuracy"]
    # differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01, t = 0.05 / (0.01 / sqrt 3) = 8.66
    assert acc["diff"] == pytest.approx(0.05) and acc["verdict"] == "better"
    assert acc["p_sign_flip"] == pytest.approx(2 / 8)
    assert table.loc["train_cost", "verdict"] == "identical"
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["compare", str(b), str(a)]) == 1  # from B to A, accuracy got worse
    assert "worse" in capsys.readouterr().out


def test_compare_fails_on_a_seed_that_failed_and_names_unpaired_configurations(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    exp = experiment(optimizers=[{"name": "gd"}, {"name": "adam"}])
    row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 10, "val_accuracy": 0.8}
    for seed in (1, 2, 3):
        spec = exp.spec("gd", {}, hidden=(16,), batch_size=32, seed=seed)
        results.write_run(a, spec, [row], "completed", "", {})
        crashed = seed == 2
        results.write_run(
            b, spec, [] if crashed else [row], "failed" if crashed else "completed", "boom", {}
        )
        results.write_run(
            a,
            exp.spec("adam", {}, hidden=(16,), batch_size=32, seed=seed),
            [row],
            "completed",
            "",
            {},
        )
    table = compare.compare(a, b)
    ended = table[table["metric"] == "ended normally"].iloc[0]
    assert ended["verdict"] == "worse" and "failed only in B: 2" in ended["seeds"]
    assert (table["verdict"] == "only in A").sum() == 1  # adam: not run in B
    assert compare.exit_code(table, "worse") == 1
    assert main(["compare", str(a), str(a)]) == 0
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "only in A" in out and "failed only in B: 2" in out


def test_seeds_that_stop_at_different_points_make_a_valid_baseline(made, tmp_path):
    """Seeds stopped by tol or a divergence end at different evaluations: the
    floors cover those all seeds have, and the baseline reads back."""
    raw = baseline(made)
    c = raw["configurations"][0]
    seed = next(iter(c["seeds"]))
    c["seeds"][seed]["rows"] = {k: [*v, v[-1]] for k, v in c["seeds"][seed]["rows"].items()}
    path = tmp_path / "longer.json"
    path.write_text(json.dumps(raw))
    assert check.read_baseline(path)["configurations"][0]["seeds"][seed]


def test_compare_of_a_folder_with_itself_is_no_difference_even_without_pairs(tmp_path):
    exp = experiment(optimizers=[{"name": "gd"}])
    for seed in (1, 2, 3):
        spec = exp.spec("gd", {}, hidden=(16,), batch_size=32, seed=seed)
        row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 10, "val_accuracy": 0.8}
        results.write_run(tmp_path, spec, [row], "completed", "", {})
    table = compare.compare(tmp_path, tmp_path, target=0.99)  # no seed reaches it
    assert "no pairs" in set(table["verdict"])
    assert compare.exit_code(table, "different") == 0
