"""The regression gate: baselines that measure rounding, and the seed-paired check.

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

from nnbench import baseline as baseline_mod
from nnbench import calibration, check, experiment, results, stats, study
from nnbench.cli import main
from nnbench.errors import NnbenchError


def grid_of(seeds=(1, 2, 3, 4), optimizers=None, name="gate"):
    return experiment.validate(
        {
            "name": name,
            "data": {"dataset": "digits"},
            "model": {"hidden": [[16]]},
            "grid": {"batch_size": [32], "seeds": list(seeds)},
            "budget": {"max_epochs": 2},
            "eval": {"every": 10},
            "optimizer": optimizers
            or [{"name": "gd", "learning_rate": 0.5}, {"name": "cg", "mb_maxiter": 5}],
        }
    )


REAL_VARIANTS = calibration.variants  # before any test replaces it


def one_environment_variant(monkeypatch):
    """Calibrate with one environment variant: another kernel family when this
    CPU runs one (a child process), else the 2-thread variant."""
    found, notes = REAL_VARIANTS()
    families = [v for v in found if v.family]
    monkeypatch.setattr(calibration, "variants", lambda: ((families or found)[:1], notes))


@pytest.fixture(autouse=True)
def _in_process_calibration(monkeypatch):
    """Baselines made by the tests below calibrate with 2 threads only, in this
    process (a kernel family's child process costs seconds; the test of kernel
    families, in the slow tier, calibrates with one)."""
    notes = calibration.variants()[1]
    threads = [calibration.Variant("threads-2", 2)]
    monkeypatch.setattr(calibration, "variants", lambda: (threads, notes))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A grid's results and its baseline (calibrated: the runs again, twice)."""
    folder = tmp_path_factory.mktemp("gate")
    study.run_experiment(grid_of(), folder / "results", n_jobs=2, log=None)
    with pytest.MonkeyPatch.context() as mp:
        threads = [calibration.Variant("threads-2", 2)]
        mp.setattr(calibration, "variants", lambda: (threads, []))
        baseline_mod.write_baseline(folder / "results", folder / "baseline.json", n_jobs=2)
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
    assert raw["version"] == 3 and raw["environment"]["numpy"] == np.__version__
    kinds = {c["label"]: c for c in raw["configurations"]}
    gd, cg = kinds["gd[learning_rate=0.5]"], kinds["cg[mb_maxiter=5]"]
    # GD's trajectory does not move under rounding: every point is within the horizon
    assert gd["kind"] == "stable" and gd["horizon"] == len(gd["floors"]["train_cost"]) - 1
    assert max(gd["floors"]["val_accuracy"]) < 1e-12  # accuracy: no prediction moved
    # CG's line searches make it chaotic: only its first points are deterministic
    assert cg["kind"] == "chaotic" and 0 <= cg["horizon"] < len(cg["floors"]["train_cost"]) - 1
    assert cg["noise"]["val_accuracy"] > 0 and cg["noise"]["grad_evals"] > 0
    assert sorted(gd["seeds"]) == ["1", "2", "3", "4"]
    assert len(gd["seeds"]["1"]["rows"]["iteration"]) == len(gd["floors"]["train_cost"])
    # CG's work is recorded per seed: its gradient evaluations and line-search failures
    work = cg["seeds"]["1"]["work"]
    assert work["grad_evals"] == cg["seeds"]["1"]["rows"]["grad_evals"][-1] > 0
    assert (
        0 <= work["line_search_failures"] <= 1
        and gd["seeds"]["1"]["work"]["line_search_failures"] is None
    )
    (made_for,) = (made / "results" / "calibration").iterdir()  # one set of results
    assert (made_for / "perturbed" / "runs").is_dir()
    # every run was recomputed once perturbed and once under an environment variant
    (variant,) = raw["calibration"]["variants"][1:]
    assert len(list((made_for / variant / "runs").glob("*.parquet"))) == 8


def test_calibration_is_reused_only_for_the_results_it_was_made_for(tmp_path):
    """A baseline after Ctrl-C reuses the calibration runs; a baseline of results
    the code has changed makes them again (stale ones would measure old against
    new code as 'rounding')."""
    folder = tmp_path / "results"
    small = grid_of(seeds=(1, 2), optimizers=[{"name": "gd", "learning_rate": 0.5}])
    study.run_experiment(small, folder, n_jobs=2, log=None)
    baseline_mod.make_baseline(folder, n_jobs=2)  # as if stopped once it had made them
    log: list[str] = []
    baseline_mod.make_baseline(folder, n_jobs=2, log=log.append)
    assert len(list((folder / "calibration").iterdir())) == 1
    assert not any("completed" in line for line in log)  # nothing ran again
    spoil(folder, "gd", 2, column="train_cost", by=1e-6)  # as a code change would
    log.clear()
    baseline_mod.make_baseline(folder, n_jobs=2, log=log.append)
    assert len(list((folder / "calibration").iterdir())) == 2
    assert any("completed" in line for line in log)


def test_seeds_needed_by_hand():
    # noise 0.01, effect 0.02, alpha 0.01: the smallest n with
    # (t(0.99, n-1) + t(0.8, n-1)) * 0.01 / sqrt(n) <= 0.02
    from scipy import stats as scipy_stats

    n = stats.seeds_needed(0.01, 0.02, 0.01)

    def need(k: int) -> float:
        return (
            (scipy_stats.t.ppf(0.99, k - 1) + scipy_stats.t.ppf(0.8, k - 1)) * 0.01 / math.sqrt(k)
        )

    assert need(n) <= 0.02 < need(n - 1)
    assert stats.seeds_needed(0.0, 0.02, 0.01) == 2
    assert stats.resolution(0.01, n, 0.01) == pytest.approx(need(n))
    # two-sided: alpha split between the tails, more seeds
    assert stats.seeds_needed(0.01, 0.02, 0.01, sides=2) > n


def test_unchanged_results_pass_in_both_modes(made):
    for strict in (False, True):
        result = check.check(made / "results", made / "baseline.json", strict=strict)
        assert result.ok, check.format_check(result)


def test_the_same_grid_run_another_way_passes_strictly(made, tmp_path):
    study.run_experiment(grid_of(), tmp_path / "again", n_jobs=1, log=None)
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
        and "gd[learning_rate=0.5] | digits | hidden 16 | batch 32: final val_accuracy dropped"
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
        "gd[learning_rate=0.5] | digits | hidden 16 | batch 32: seed 2 failed "
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
    study.run_experiment(grid_of(seeds=(3, 4, 5, 6)), tmp_path / "r", n_jobs=2, log=None)
    result = check.check(tmp_path / "r", made / "baseline.json")
    assert not result.ok
    text = " ".join(result.problems)
    assert "seeds 5,6 are not in the baseline (it has 1,2,3,4)" in text
    assert "seeds 1,2 are missing from the results" in text
    study.run_experiment(
        grid_of(optimizers=[{"name": "adam"}], name="other"), tmp_path / "o", log=None
    )
    result = check.check(tmp_path / "o", made / "baseline.json")
    text = " ".join(result.problems)
    assert "adam | digits | hidden 16 | batch 32: not in the baseline" in text
    assert "gd[learning_rate=0.5] | digits | hidden 16 | batch 32: missing from the results" in text


def crafted_noise(made, tmp_path, noise):
    """The baseline with its chaotic configuration's accuracy noise set by hand,
    so that what the test sees does not depend on how this CPU rounds."""
    raw = baseline(made)
    for c in raw["configurations"]:
        if c["kind"] == "chaotic":
            c["noise"]["val_accuracy"] = noise
    path = tmp_path / f"noise-{noise}.json"
    path.write_text(json.dumps(raw))
    return path


def test_identical_chaotic_results_pass_whatever_their_seeds(made, tmp_path):
    """Noise so large that a paired test would need hundreds of seeds: results equal
    to the baseline's still pass, in every mode (nothing to test)."""
    path = crafted_noise(made, tmp_path, 0.5)
    for strict in (False, True):
        result = check.check(made / "results", path, strict=strict, fail_unresolved=True)
        assert result.ok, check.format_check(result)
        cg = result.table.set_index("kind").loc["chaotic"]
        assert cg["verdict"] == "identical"


def test_a_chaotic_change_the_seeds_cannot_resolve_is_reported_not_failed(
    made, results_dir, tmp_path
):
    for seed in (1, 2, 3, 4):
        spoil(results_dir, "cg", seed, by=-1 / 359)  # one image more wrong in every seed
    loud = crafted_noise(made, tmp_path, 0.2)  # rounding spreads it by 0.2: 4 seeds resolve nothing
    result = check.check(results_dir, loud)
    assert result.ok, check.format_check(result)
    assert result.table.set_index("kind").loc["chaotic", "verdict"] == "unresolved"
    (note,) = [n for n in result.notes if "unresolved" in n]
    name = "cg[mb_maxiter=5] | digits | hidden 16 | batch 32"
    assert f"{name}: unresolved: val_accuracy moved" in note
    assert "the results have 4" in note
    text = check.format_check(result)
    assert "1 of them unresolved" in text.splitlines()[-1] and text.startswith("configuration")
    for asked in ({"fail_unresolved": True}, {"strict": True}):
        failed = check.check(results_dir, loud, **asked)
        assert not failed.ok and any("unresolved" in p for p in failed.problems)
    # with the noise rounding really makes small, the same drop is resolved, and fails
    quiet = crafted_noise(made, tmp_path, 0.001)
    dropped = check.check(results_dir, quiet)
    assert not dropped.ok
    assert "final val_accuracy dropped" in " ".join(dropped.problems)
    assert "Holm-adjusted p" in " ".join(dropped.problems)


def test_strict_mode_tests_the_work_of_a_chaotic_configuration(made, results_dir, tmp_path):
    """A change of CG's gradient evaluations alone (its accuracy untouched) fails
    the strict check: a loosened line-search tolerance does exactly that."""
    raw = baseline(made)
    cg = next(c for c in raw["configurations"] if c["kind"] == "chaotic")
    cg["noise"]["grad_evals"] = 1.0  # crafted: rounding moves the count by about one
    path = tmp_path / "b.json"
    path.write_text(json.dumps(raw))
    for seed in (1, 2, 3, 4):
        spoil(results_dir, "cg", seed, column="grad_evals", by=-(300 + seed))
    assert check.check(results_dir, path).ok  # the default mode judges accuracy drops only
    strict = check.check(results_dir, path, strict=True)
    assert not strict.ok
    assert "final grad_evals changed" in " ".join(strict.problems)


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
    stable = next(c for c in raw["configurations"] if c["kind"] == "stable")

    def raised(metric, value):
        floors = {**stable["floors"], metric: [value] * len(stable["floors"][metric])}
        return {**raw, "configurations": [{**stable, "floors": floors}]}

    cases |= {
        "seed-01": spoiled(seeds={"01": seeds[one]}),
        "seed-arabic": spoiled(seeds={"\u0661": seeds[one]}),
        "huge-int": spoiled(seeds={**seeds, one: {**seeds[one], "rows": huge_row}}),
        "spec-list": spoiled(spec=[1]),
        "values-list": spoiled(spec={"values": [1]}),
        "empty-floors": spoiled(floors={m: [] for m in first["floors"]}),
        "horizon-beyond": spoiled(horizon=10**6),
        "cost-floors-1e9": raised("train_cost", 1e9),
        "accuracy-floors-above-1": raised("val_accuracy", 1.5),
        "accuracy-noise-above-1": spoiled(noise={**first["noise"], "val_accuracy": 2.0}),
        "stable-with-short-horizon": {**raw, "configurations": [{**stable, "horizon": 0}]},
        "effect-out-of-range": {**raw, "calibration": {**raw["calibration"], "effect": 5}},
    }
    expected = {
        "seed-01": "has a malformed seed '01'",
        "seed-arabic": "has a malformed seed",
        "huge-int": "has a non-number in seed",
        "spec-list": "has a malformed spec",
        "values-list": "has a malformed spec",
        "empty-floors": "one per evaluation",
        "horizon-beyond": "has a horizon 1000000 beyond",
        "v1": "a baseline of version 1, and this nnbench reads version 3",
        "empty": "no configurations",
        "list-label": "configuration 1 has no label of the right kind",
        "infinite-noise": "configuration 1 has a noise for 'val_accuracy' of inf",
        "huge-floor": "configuration 1 has no floors for val_accuracy",
        "cost-floors-1e9": "has a floor 1e+09 for train_cost at evaluation 1, within its horizon",
        "accuracy-floors-above-1": "a floor 1.5 for val_accuracy: an accuracy moves by at most 1",
        "accuracy-noise-above-1": "has a noise for 'val_accuracy' of 2.0",
        "stable-with-short-horizon": "is stable with a horizon of 1 of",
        "effect-out-of-range": "its calibration has an effect 5 outside (0, 1)",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        code = main(["check", str(made / "results"), "--baseline", str(path), "--strict"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and expected[name] in err, (name, err)
        if name == "v1":
            assert "make one with `nnbench baseline RESULTS_DIR --out FILE`" in err


def test_a_baseline_of_unfinished_runs_is_refused(tmp_path):
    exp = grid_of(optimizers=[{"name": "faulty", "fault": "raise"}], seeds=(1,))
    study.run_experiment(exp, tmp_path / "r", log=None)
    with pytest.raises(NnbenchError, match="faulty\\[fault=raise\\] seed 1 failed"):
        baseline_mod.write_baseline(tmp_path / "r", tmp_path / "b.json")
    assert not (tmp_path / "b.json").exists()


def test_a_baseline_is_valid_json_even_with_non_finite_values(tmp_path):
    exp = grid_of(optimizers=[{"name": "faulty", "fault": "nan"}], seeds=(1, 2))
    study.run_experiment(exp, tmp_path / "r", log=None)
    path = baseline_mod.write_baseline(tmp_path / "r", tmp_path / "b.json")
    raw = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert raw["configurations"][0]["seeds"]["1"]["status"] == "diverged"
    assert check.check(tmp_path / "r", path).ok


def test_check_cli_exit_codes(made, results_dir, capsys):
    assert main(["check", str(results_dir), "--baseline", str(made / "baseline.json")]) == 0
    spoil(results_dir, "gd", 1, by=-0.05)
    assert main(["check", str(results_dir), "--baseline", str(made / "baseline.json")]) == 1
    out = capsys.readouterr().out
    assert "dropped" in out and out.splitlines()[-1].startswith("FAILED (drops)")


def test_seeds_that_stop_at_different_points_make_a_valid_baseline(made, tmp_path):
    """Seeds stopped by tol or a divergence end at different evaluations: the
    floors cover those all seeds have, and the baseline reads back."""
    raw = baseline(made)
    c = raw["configurations"][0]
    seed = next(iter(c["seeds"]))
    c["seeds"][seed]["rows"] = {k: [*v, v[-1]] for k, v in c["seeds"][seed]["rows"].items()}
    path = tmp_path / "longer.json"
    path.write_text(json.dumps(raw))
    assert baseline_mod.read_baseline(path)["configurations"][0]["seeds"][seed]


@pytest.mark.slow  # child processes under another kernel family: seconds
def test_a_baseline_made_under_one_kernel_family_passes_under_another(tmp_path, monkeypatch):
    """The same grid, computed by a child process under another BLAS kernel
    family (OPENBLAS_CORETYPE: what another CPU computes), checked against the
    baseline this CPU made, calibrated under that family: the stable
    configuration passes within its floors point by point, the chaotic one
    passes or is unresolved, and the check says which family ran and that the
    baseline's calibration measured it."""
    one_environment_variant(monkeypatch)
    found = calibration.variants()[0]
    if not found or found[0].family is None:
        pytest.skip("this CPU's BLAS runs no other kernel family")
    variant = found[0]
    study.run_experiment(grid_of(), tmp_path / "results", n_jobs=2, log=None)
    path = baseline_mod.write_baseline(tmp_path / "results", tmp_path / "b.json", n_jobs=2)
    assert json.loads(path.read_text())["calibration"]["blas"]["calibrated"] == [variant.family]
    specs = [run.spec for run in results.stored_runs(tmp_path / "results").values()]
    calibration.run_variant(variant, specs, tmp_path / "other", 2, 1, run_here=None)
    result = check.check(tmp_path / "other", path)
    assert result.ok, check.format_check(result)
    verdicts = result.table.set_index("kind")["verdict"]
    assert verdicts["stable"] == "ok" and verdicts["chaotic"] in ("identical", "unresolved", "ok")
    (note,) = [n for n in result.notes if n.startswith("environment")]
    assert f"-> {variant.family}, which the baseline's calibration measured" in note
    strict = check.check(tmp_path / "other", path, strict=True)
    gd = strict.table.set_index("kind").loc["stable"]
    assert gd["verdict"] == "ok"  # every point of GD's trajectories within its floors
