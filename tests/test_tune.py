"""The tuning protocol: trials, a choice on validation only, finals on unseen
seeds, edge flags, resuming, and a second choice that retires the first's finals."""

import json

import numpy as np
import pandas as pd
import pytest

from nnbench import experiment, report, results, runner, study, tune
from nnbench.errors import ConfigError, NnbenchError
from nnbench.train import METRICS


def tuned(final_seeds=(11, 12), trials=3, space=None, name="tuned", max_iter=20):
    return experiment.validate(
        {
            "name": name,
            "data": {"dataset": "digits"},
            "model": {"hidden": [[8]]},
            "grid": {"batch_size": [32], "seeds": [1, 2]},
            "budget": {"max_iter": max_iter},
            "eval": {"every": 10},
            "tune": {"trials": trials, "seed": 0, "final_seeds": list(final_seeds)},
            "optimizer": [
                {"name": "gd", "learning_rate": space or {"log_uniform": [0.01, 3.0]}},
                {"name": "cg", "mb_maxiter": 3},  # nothing searched: straight to finals
            ],
        }
    )


def test_a_tuned_study_runs_chooses_on_validation_and_resumes(tmp_path):
    exp = tuned()
    summary = study.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    # gd: 3 trials x 2 seeds + 2 finals; cg: 2 finals
    assert summary.n_done == 10 and summary.statuses == {"completed": 10}
    runs = results.load_runs(tmp_path)
    assert sorted(runs.query("phase == 'trial'")["seed"].unique()) == [1, 2]
    assert sorted(runs.query("phase == 'final'")["seed"].unique()) == [11, 12]
    chosen = json.loads((tmp_path / tune.TUNE_FILE).read_text())["chosen"]
    gd = next(c for c in chosen if c["optimizer"] == "gd")
    last = results.final_rows(results.load(tmp_path))
    trials = last.query("optimizer == 'gd' and phase == 'trial'")
    by_trial = trials.groupby("trial")["val_accuracy"].mean()
    assert gd["trial"] == int(by_trial.idxmax())  # the best mean validation accuracy
    assert gd["val_accuracy"] == pytest.approx(by_trial.max())
    finals = last.query("optimizer == 'gd' and phase == 'final'")
    assert set(finals["trial"]) == {gd["trial"]}
    assert study.run_experiment(exp, tmp_path, log=None).n_done == 0  # resumed: nothing new


def test_stacked_trials_equal_trials_alone_and_say_so(tmp_path):
    """Trials of one optimizer and seed train as one stack by default: the same
    numbers as with --no-stack, bit for bit; their own clocks empty and the
    stack's seconds in stack_seconds; the finals alone and timed."""
    exp = tuned(trials=4)
    study.run_experiment(exp, tmp_path / "stacked", n_jobs=2, log=None)
    study.run_experiment(exp, tmp_path / "alone", n_jobs=2, log=None, stack=False)
    stacked, alone = (results.stored_runs(tmp_path / k) for k in ("stacked", "alone"))
    assert stacked.keys() == alone.keys()
    timeless = [k for k in METRICS if not k.endswith("seconds")]
    for run_id, run in stacked.items():
        a, b = (pd.read_parquet(r.path) for r in (run, alone[run_id]))
        pd.testing.assert_frame_equal(a[timeless], b[timeless])
        size = results.read_meta(run.path)["provenance"].get("stack_size")
        assert results.read_meta(alone[run_id].path)["provenance"].get("stack_size") is None
        if run.spec.phase == "trial":  # 4 trials of gd per seed: one stack each
            assert size == 4
            assert a[["train_seconds", "train_cpu_seconds", "eval_seconds"]].isna().all().all()
            assert (a["stack_seconds"].diff().dropna() >= 0).all()
        else:
            assert size is None
            assert a["train_seconds"].notna().all() and a["stack_seconds"].isna().all()


def test_no_stack_on_the_command_line_runs_every_trial_alone(tmp_path):
    from nnbench.cli import main

    exp_file = tmp_path / "tuned.toml"
    exp_file.write_text(
        'name = "cli-tuned"\n[data]\ndataset = "digits"\n[model]\nhidden = [[8]]\n'
        "[grid]\nbatch_size = [32]\nseeds = [1]\n[budget]\nmax_iter = 10\n"
        "[tune]\ntrials = 2\nfinal_seeds = [5]\n"
        '[[optimizer]]\nname = "gd"\nlearning_rate = { log_uniform = [0.01, 1.0] }\n'
    )
    for flags, size in (([], 2), (["--no-stack"], None)):
        out = tmp_path / f"out{len(flags)}"
        assert main(["run", str(exp_file), "--out", str(out), "--quiet", *flags]) == 0
        trials = [r for r in results.stored_runs(out).values() if r.spec.phase == "trial"]
        assert len(trials) == 2
        assert {results.read_meta(r.path)["provenance"].get("stack_size") for r in trials} == {size}


def test_the_stack_groups_only_trials_that_differ_in_numbers():
    exp = tuned(trials=3)
    trials = tune.trial_runs(exp)
    groups = runner.stacks(trials)
    assert sorted(map(len, groups)) == [3, 3]  # gd: one stack per seed
    assert all(len({s.seed for s in g}) == 1 for g in groups)
    chosen = {"optimizer": "gd", "options": {"learning_rate": 0.1}, "trial": 0}
    finals = tune.final_runs(exp, [chosen | {"hidden": [8], "batch_size": 32}])
    assert sorted(map(len, runner.stacks(finals))) == [1, 1]  # finals are timed: alone
    grid = experiment.validate(
        {
            "name": "g",
            "data": {"dataset": "digits"},
            "model": {"hidden": [[8]]},
            "grid": {"batch_size": [32], "seeds": [1]},
            "budget": {"max_iter": 20},
            "optimizer": [{"name": "gd", "learning_rate": [0.1, 0.2, 0.3]}],
        }
    )
    assert sorted(map(len, runner.stacks(grid.runs()))) == [1, 1, 1]  # timed: alone
    timed = [
        type(s)(s.experiment, s.optimizer, s.options, {**s.values, "max_seconds": 5.0},
                s.phase, s.trial)
        for s in trials
    ]  # fmt: skip
    assert sorted(map(len, runner.stacks(timed))) == [1] * 6  # a budget in seconds: alone


def test_a_stack_is_as_large_as_memory_allows_and_groups_unset_options_apart():
    from types import SimpleNamespace

    from nnbench import optimizers
    from nnbench.optimizers import Option
    from nnbench.optimizers.first_order import GD
    from nnbench.stack import MAX_STACK_PARAMS

    exp = tuned(trials=12)
    trials = [s for s in tune.trial_runs(exp) if s.optimizer == "gd"]
    big = SimpleNamespace(n_features=784, n_classes=10)
    shared = {runner.data_key(trials[0]): big}
    n_params = (784 + 1) * 8 + (8 + 1) * 10
    assert sorted(map(len, runner.stacks(trials, shared))) == [12, 12]  # 12 x 6,370 fit
    wide = [type(s)(s.experiment, s.optimizer, s.options, {**s.values, "hidden": (5000,)},
                    s.phase, s.trial) for s in trials]  # fmt: skip
    per_stack = MAX_STACK_PARAMS // ((784 + 1) * 5000 + 5001 * 10)
    assert max(map(len, runner.stacks(wide, shared))) == per_stack < 12
    assert n_params * 12 < MAX_STACK_PARAMS

    class Clipped(GD):  # an optional number option: unset selects other code
        name = "clipped_gd_test"
        options = {**GD.options, "clip": Option(None, "clip", optional=True, kind=float)}

    optimizers.register(Clipped)
    try:
        clipped = [
            type(s)(s.experiment, "clipped_gd_test",
                    {**s.options, **({"clip": 1.0} if s.trial % 2 else {})}, s.values,
                    s.phase, s.trial)
            for s in trials
        ]  # fmt: skip
        groups = runner.stacks(clipped)
        assert sorted(map(len, groups)) == [6, 6, 6, 6]
        assert all(len({"clip" in s.options for s in g}) == 1 for g in groups)
    finally:
        optimizers._REGISTRY.unregister("clipped_gd_test")


def test_a_stack_holds_no_more_activations_than_one_run_or_the_cap():
    """Defect 5 of issue 27: activations grow with K x batch rows x width."""
    from types import SimpleNamespace

    from nnbench.stack import MAX_STACK_ACTIVATIONS, max_members

    mnist = 784 * 100 + 101 * 10 + 100
    assert max_members(mnist, 60_000, [100, 10]) == 1  # full batch: 6.6 million a member
    assert max_members(mnist, 128, [100, 10]) == 32
    assert max_members(mnist, 10_000, [100, 10]) == MAX_STACK_ACTIVATIONS // 1_100_000 == 3
    assert max_members(mnist, None, [100, 10]) == 32  # rows unknown: weights only

    exp = tuned(trials=12)
    trials = [s for s in tune.trial_runs(exp) if s.optimizer == "gd"]
    rows = np.empty((60_000, 0))
    big = SimpleNamespace(n_features=784, n_classes=10, load=lambda: {"train": (rows, rows)})
    shared = {runner.data_key(trials[0]): big}
    assert sorted(map(len, runner.stacks(trials, shared))) == [12, 12]  # 32-row minibatches
    full, growing = (
        [type(s)(s.experiment, s.optimizer, s.options, {**s.values, **change}, s.phase, s.trial)
         for s in trials]
        for change in ({"batch_size": "full"}, {"batch_growth": 2.0, "hidden": (100,)})
    )  # fmt: skip
    assert max(map(len, runner.stacks(full, shared))) == 3  # 60,000 x (8 + 10) each
    assert max(map(len, runner.stacks(growing, shared))) == 1  # 60,000 x 110: alone


def test_a_stacks_watchdog_waits_as_many_times_longer_as_it_has_members():
    """A caveat of issue 27: hang_seconds below a stack's evaluation time killed
    every stack as hung; its watchdog now scales with its members."""
    trials = [s for s in tune.trial_runs(tuned(trials=3)) if s.optimizer == "gd"]
    group = runner.stacks(trials)[0]
    assert len(group) == 3
    assert runner.task_of(group, shared=None, threads=1).hang_seconds == 3 * trials[0].hang_seconds
    assert runner.task_of(group[:1], shared=None, threads=1).hang_seconds == trials[0].hang_seconds


def test_a_report_of_stacked_trials_times_only_what_has_a_clock(tmp_path):
    """Stacked trials have no clock of their own: the report's clock is chosen
    from the finals, and the robustness line compares gradient evaluations."""
    from nnbench.report import tables

    exp = tuned(trials=3)
    study.run_experiment(exp, tmp_path / "r", n_jobs=2, log=None)
    frame = results.load(tmp_path / "r")
    assert tables.stacked(frame).any()
    assert tables.time_axis(frame) == "train_cpu_seconds"  # -j 2: shared; finals have CPU
    report.build_report(tmp_path / "r", target=0.3, figures=[])
    text = (tmp_path / "r" / "report.md").read_text()
    assert "Robustness, on gradient evaluations to the target instead of seconds" in text


def test_the_choice_never_looks_at_test_accuracy(tmp_path):
    """Trial 0 has the best test accuracy, trial 1 the best validation accuracy:
    trial 1 is chosen."""
    exp = tuned(trials=2)
    for spec in tune.trial_runs(exp):
        val, test = (0.9, 0.5) if spec.trial == 1 else (0.5, 0.99)
        row = dict.fromkeys(METRICS, 1.0) | {"iteration": 20, "val_accuracy": val}
        results.write_run(tmp_path, spec, [row | {"test_accuracy": test}], "completed", "", {})
    chosen, missing = tune.choose(exp, results.stored_runs(tmp_path))
    assert missing == 0
    assert next(c for c in chosen if c["optimizer"] == "gd")["trial"] == 1


def test_a_choice_in_the_outer_tenth_of_its_space_is_an_edge():
    exp = tuned(trials=4, space={"log_uniform": [0.01, 3.0]})
    points = tune.trial_points(exp.optimizers[0], 4, 0)
    space = tune.spaces_of(exp.optimizers[0])["learning_rate"]
    for p in points:  # drawn inside the space, and the same draw every time
        assert 0.01 <= p["learning_rate"] <= 3.0
    assert points == tune.trial_points(exp.optimizers[0], 4, 0)
    low, high = np.log(0.01), np.log(3.0)
    for value, edge in ((0.0105, True), (2.9, True), (0.2, False)):
        fraction = (np.log(value) - low) / (high - low)
        assert tune.is_edge(space, value, tune.EDGE_FRACTION) == edge, fraction


def test_final_seeds_must_be_unseen_by_the_choice():
    with pytest.raises(ConfigError, match="shares seeds 2 with \\[grid\\] seeds"):
        tuned(final_seeds=(2, 12))


def test_a_second_choice_retires_the_finals_of_the_first(tmp_path):
    """A rerun can choose again (a failed trial retried, say): the earlier
    finals stay on disk but are no longer the optimizer's numbers."""
    exp = tuned()
    study.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    chosen = json.loads((tmp_path / tune.TUNE_FILE).read_text())["chosen"]
    gd = next(c for c in chosen if c["optimizer"] == "gd")
    other = next(t for t in range(3) if t != gd["trial"])
    old = [
        exp.spec("gd", tune.trial_points(exp.optimizers[0], 3, 0)[other], "final", other,
                 hidden=(8,), batch_size=32, seed=seed)
        for seed in (11, 12)
    ]  # fmt: skip
    for spec in old:  # as if an earlier choice had been `other`
        row = dict.fromkeys(METRICS, 0.0) | {"iteration": 20, "val_accuracy": 0.01}
        results.write_run(tmp_path, spec, [row], "completed", "", {})
    frame = results.load(tmp_path, every_version=True)
    current = tune.current_finals(frame, chosen)
    assert set(frame.query("phase == 'final' and optimizer == 'gd'")["trial"]) == {
        gd["trial"],
        other,
    }
    assert set(current.query("phase == 'final' and optimizer == 'gd'")["trial"]) == {gd["trial"]}
    with pytest.warns(results.EarlierRunsWarning, match="2 runs of an earlier version"):
        report.build_report(tmp_path, tmp_path / "rep", figures=[])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "0.0100" not in md  # the retired finals' accuracy appears nowhere


def test_finals_are_matched_on_the_chosen_setting_not_the_trial_index(tmp_path):
    """Another [tune] seed draws other settings under the same trial indices: the
    finals of the earlier study's setting at the chosen index are not pooled in."""
    exp = tuned()
    study.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    chosen = json.loads((tmp_path / tune.TUNE_FILE).read_text())["chosen"]
    gd = next(c for c in chosen if c["optimizer"] == "gd")
    stale_options = {"learning_rate": 0.01234}  # another setting, the same trial index
    for seed in (11, 12):
        spec = exp.spec("gd", stale_options, "final", gd["trial"], hidden=(8,), batch_size=32,
                        seed=seed)  # fmt: skip
        row = dict.fromkeys(METRICS, 0.0) | {"iteration": 20, "val_accuracy": 0.01}
        results.write_run(tmp_path, spec, [row], "completed", "", {})
    shown = tune.reported(results.load(tmp_path, every_version=True), chosen)
    finals = shown.query("optimizer == 'gd'")
    assert sorted(finals["seed"].unique()) == [11, 12]  # two finals, not four
    assert finals["label"].nunique() == 1 and "0.01234" not in finals["label"].iloc[0]


def test_a_study_whose_finals_are_missing_reports_its_trials(tmp_path):
    exp = tuned()
    for spec in tune.trial_runs(exp):  # the trials only, as if stopped before the finals
        row = dict.fromkeys(METRICS, 1.0) | {"iteration": 20, "val_accuracy": 0.5}
        results.write_run(tmp_path, spec, [row], "completed", "", {})
    report.build_report(tmp_path, tmp_path / "rep", figures=[])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Tuning: trials only" in md and "Run the same command again" in md
    assert "gd[learning_rate=" in md  # the trials' table


def test_merging_into_or_from_a_tuning_study_is_refused(tmp_path):
    study.run_experiment(tuned(), tmp_path, n_jobs=2, log=None)
    plain = experiment.validate(
        {
            "name": "plain",
            "data": {"dataset": "digits"},
            "model": {"hidden": [[8]]},
            "budget": {"max_iter": 20},
            "optimizer": [{"name": "adam"}],
        }
    )
    with pytest.raises(NnbenchError, match="--merge cannot mix a tuning study"):
        study.run_experiment(plain, tmp_path, merge=True, log=None)
    study.run_experiment(plain, tmp_path / "p", log=None)
    with pytest.raises(NnbenchError, match="--merge cannot mix a tuning study"):
        study.run_experiment(tuned(name="other"), tmp_path / "p", merge=True, log=None)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        # valid bounds whose trials, rounded, stay valid: 0.99999 is not rounded to 1
        ({"one_minus_log_uniform": [0.9, 0.99999]}, None),
        ({"log_uniform": [0.10001, 0.10002]}, "trials would all be 0.1"),
        ({"choice": [1, 1.0]}, "the choice names one value twice"),
        ({"uniform": [0.0, 0.5]}, "the space reaches 0.0"),
    ],
)
def test_search_spaces_that_rounding_or_repeats_would_spoil_are_refused(space, message):
    table = {
        "name": "s",
        "data": {"dataset": "digits"},
        "tune": {"trials": 4, "final_seeds": [9]},
        "optimizer": [
            {"name": "momentum", "momentum": space}
            if "one_minus" in str(space)
            else {"name": "gd", "learning_rate": space}
        ],
    }
    if message is None:
        exp = experiment.validate(table, "exp.toml")
        points = tune.trial_points(exp.optimizers[0], 4, 0)
        assert all(0.9 <= p["momentum"] <= 0.99999 < 1 for p in points)
        return
    with pytest.raises(ConfigError, match=message) as err:
        experiment.validate(table, "exp.toml")
    assert str(err.value).startswith("exp.toml: [[optimizer]] #1 ")  # names file and key


def test_a_tuned_study_uses_only_the_runs_its_file_defines_now(tmp_path):
    """Fewer final seeds, fewer trials, another budget: the finals, trials and
    choice shown are those of the file as it is; the earlier runs stay on disk
    unused, named in one line."""
    import warnings

    def shown():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", results.EarlierRunsWarning)
            frame = results.load(tmp_path)
        return frame, tune.reported(frame, tune.read_choices(tmp_path))

    study.run_experiment(tuned(trials=4), tmp_path, n_jobs=2, log=None)
    with pytest.warns(study.OtherRunsWarning, match="2 runs of an earlier version"):
        summary = study.run_experiment(tuned(trials=4, final_seeds=(11,)), tmp_path, log=None)
    assert summary.n_done == 0
    frame, finals = shown()
    assert sorted(finals["seed"].unique()) == [11]
    with pytest.warns(study.OtherRunsWarning):
        study.run_experiment(tuned(trials=2, final_seeds=(11,)), tmp_path, log=None)
    frame, finals = shown()
    assert sorted(frame.query("phase == 'trial'")["trial"].unique()) == [0, 1]
    chosen = tune.read_choices(tmp_path)
    assert all(c["trial"] in (0, 1) for c in chosen if c["optimizer"] == "gd")
    with pytest.warns(study.OtherRunsWarning):
        study.run_experiment(tuned(trials=2, final_seeds=(11,), max_iter=10), tmp_path, log=None)
    frame, finals = shown()
    assert set(frame["max_iter"]) == {10} and len(finals["run_id"].unique()) == 2  # gd, cg


def test_a_grid_of_the_same_name_in_a_tuned_folder_is_what_the_folder_shows(tmp_path):
    """The experiment run once with [tune] and once without: the grid's runs are
    the folder's now, not hidden by the tuned study's finals."""
    study.run_experiment(tuned(), tmp_path, n_jobs=2, log=None)
    grid = experiment.validate(
        {
            "name": "tuned",
            "data": {"dataset": "digits"},
            "model": {"hidden": [[8]]},
            "grid": {"batch_size": [32], "seeds": [1, 2]},
            "budget": {"max_iter": 20},
            "optimizer": [{"name": "adam"}],
        }
    )
    with pytest.warns(study.OtherRunsWarning):
        study.run_experiment(grid, tmp_path, log=None)
    with pytest.warns(results.EarlierRunsWarning):
        frame = results.load(tmp_path)
    shown = tune.reported(frame, tune.read_choices(tmp_path))
    assert set(shown["label"]) == {"adam"} and set(shown["phase"]) == {"grid"}
