"""Every setting declared in the schema is wired, generically: set to a value
other than its default (its declared example, or one its option suggests), it
reaches the run, its stored configuration, its name and, where a fit uses it,
the estimator. A setting added to nnbench.settings.SCHEMA is covered here with
no edit of this file; one declared but read by nothing fails it."""

import numpy as np
import pytest

from nnbench import MLPClassifier, naming, results, runner, settings
from nnbench.build import build_run, run_values
from nnbench.data import load_dataset
from nnbench.estimator import SETTINGS
from nnbench.experiment import RunSpec

RUN_SETTINGS = [s for s in settings.SCHEMA if s.scope in ("run", "control")]
BUILT = ("data", "model", "start", "loop")  # the stages build_run consumes


class Tracked(dict):
    """A mapping that remembers which keys were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def values_with(setting, value):
    """Run settings of a short run (40 steps over 1.8 passes of 360 synthetic rows),
    with ``setting`` at ``value``; a budget given replaces the default one whole."""
    given = {"max_iter": 40, "batch_size": 16, "dataset": "synthetic"}
    if setting.key in settings.BUDGET_KEYS:
        given.pop("max_iter")
    given[setting.key] = value
    return run_values(**given)


def splits_for(values):
    ds = load_dataset(values["dataset"], options=values["data_options"])
    return {"train": ds.train, "valid": ds.valid, "test": ds.test}, ds.n_classes


def trained(values):
    splits, n_classes = splits_for(values)
    run = build_run(Tracked(values), "gd", splits, n_classes)
    return run, run()


@pytest.mark.parametrize("setting", RUN_SETTINGS, ids=lambda s: s.key)
def test_every_setting_reaches_the_run(setting):
    example = settings.example(setting)
    assert example != setting.default
    base = values_with(setting, setting.default)
    changed = values_with(setting, example)
    if setting.stage in BUILT:
        splits, n_classes = splits_for(changed)
        tracked = Tracked(changed)
        run = build_run(tracked, "gd", splits, n_classes)
        assert setting.key in tracked.read, f"{setting.where}: declared, never read by build_run"
        _, before = trained(base)
        _, after = trained(changed)
        assert _differ(before, after), f"{setting.where}={example!r} changed nothing the run did"
        del run
    elif setting.stage == "source":  # which data the runner shares with the run
        spec = RunSpec("x", "gd", {}, base)
        other = RunSpec("x", "gd", {}, changed)
        assert runner.data_key(spec) != runner.data_key(other)
    elif setting.stage == "control":  # how the runner supervises the run
        spec = RunSpec("x", "gd", {}, changed)
        task = runner.task_of(spec, shared=None, threads=1)
        assert example in vars(task).values()
    else:
        pytest.fail(f"{setting.where}: stage {setting.stage!r} is consumed by nothing known")


def _differ(a, b) -> bool:
    rows_a = [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in a.rows]
    rows_b = [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in b.rows]
    if len(rows_a) != len(rows_b) or a.theta.shape != b.theta.shape:
        return True
    same_rows = all(
        np.array_equal(np.asarray(list(x.values()), float), np.asarray(list(y.values()), float),
                       equal_nan=True)
        for x, y in zip(rows_a, rows_b)
    )  # fmt: skip
    return not (same_rows and np.array_equal(a.theta, b.theta))


@pytest.mark.parametrize("setting", [s for s in RUN_SETTINGS if s.scope == "run"],
                         ids=lambda s: s.key)  # fmt: skip
def test_every_setting_is_stored_identified_and_named(setting):
    example = settings.example(setting)
    base = RunSpec("x", "gd", {}, values_with(setting, setting.default))
    changed = RunSpec("x", "gd", {}, values_with(setting, example))
    # identity: a different computation is a different run
    assert changed.run_id != base.run_id
    # the stored configuration: a column of every row, holding the value
    row = results.config_row(changed, "completed", "")
    assert setting.key in results.CONFIG_COLUMNS
    assert row[setting.key] == results.column_value(setting.key, changed.values[setting.key])
    # the name: two configurations that differ only by it never print the same name
    import pandas as pd

    frame = pd.DataFrame([results.config_row(s, "completed", "") for s in (base, changed)])
    named = naming.name_configurations(frame)
    if setting.key in naming.NAMED_APART:  # the cell and the seed are shown beside the name
        assert frame[setting.key].nunique() == 2
    else:
        assert named["name"].nunique() == 2 and setting.key in named["name"].iloc[1]


@pytest.mark.parametrize("setting", [s for s in RUN_SETTINGS if s.estimator is not None],
                         ids=lambda s: s.key)  # fmt: skip
def test_every_setting_a_fit_uses_is_an_estimator_parameter(setting):
    name = SETTINGS[setting.key]
    example = settings.example(setting)
    clf = MLPClassifier(**{name: example})
    assert clf.get_params()[name] == example
    seed = example if setting.key == "seed" else 0
    assert clf._values(seed)[setting.key] == setting.option.convert(example)


def test_the_schema_declares_a_stage_and_an_example_for_every_run_setting():
    stages = {"source", "data", "model", "start", "loop", "control"}
    for setting in RUN_SETTINGS:
        assert setting.stage in stages, setting.where
        settings.example(setting)  # a non-default value exists
