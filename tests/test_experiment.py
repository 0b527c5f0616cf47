"""Experiment files: the format, validation with one clear line per mistake, run ids."""

import tomllib

import pytest

from nnbench import data, experiment
from nnbench.errors import ConfigError

GOOD = """
name = "small"
[data]
dataset = "digits"
[model]
hidden = [[16], [8, 8]]
[grid]
batch_size = [32, 0.1]
seeds = [1, 2]
[budget]
max_iter = 30
[eval]
every = 10
[[optimizer]]
name = "gd"
learning_rate = [0.1, 0.5]
[[optimizer]]
name = "adam"
"""


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_file_expands_to_the_full_grid(tmp_path):
    exp = experiment.load_experiment(write(tmp_path, GOOD))
    runs = exp.runs()
    # 2 architectures x (2 gd learning rates + adam) x 2 batch sizes x 2 seeds
    assert len(runs) == 2 * 3 * 2 * 2
    labels = {r.label for r in runs}
    assert labels == {"gd[learning_rate=0.1]", "gd[learning_rate=0.5]", "adam"}
    assert {r.arch for r in runs} == {"16", "8-8"}
    assert len({r.run_id for r in runs}) == len(runs)
    assert {k: exp.values[k] for k in ("dataset", "path", "train", "validation", "test")} == {
        "dataset": "digits",
        "path": None,
        "train": "train",
        "validation": "valid",
        "test": "test",
    }
    assert exp.values["dtype"] == "float64"  # the schema's default
    assert exp.n_runs == len(runs)


def test_run_ids_are_stable_and_ignore_the_experiment_name(tmp_path):
    a = experiment.load_experiment(write(tmp_path, GOOD)).runs()
    b = experiment.load_experiment(write(tmp_path, GOOD.replace('"small"', '"other"'), "b.toml"))
    assert [r.run_id for r in a] == [r.run_id for r in b.runs()]
    changed = experiment.load_experiment(
        write(tmp_path, GOOD.replace("max_iter = 30", "max_iter = 31"), "c.toml")
    )
    assert not {r.run_id for r in a} & {r.run_id for r in changed.runs()}


def test_no_budget_is_the_posts_100_iterations(tmp_path):
    exp = experiment.load_experiment(write(tmp_path, GOOD.replace("max_iter = 30", "")))
    assert exp.values["max_iter"] == 100 and exp.values["max_epochs"] is None


def test_identity_depends_on_values_not_spelling(tmp_path):
    a = experiment.load_experiment(write(tmp_path, GOOD), {"budget.max_epochs": 1})
    b = experiment.load_experiment(write(tmp_path, GOOD), {"budget.max_epochs": 1.0})
    assert [r.run_id for r in a.runs()] == [r.run_id for r in b.runs()]
    c = experiment.load_experiment(write(tmp_path, GOOD.replace("[0.1, 0.5]", "[0.1, 5]"), "c"))
    d = experiment.load_experiment(write(tmp_path, GOOD.replace("[0.1, 0.5]", "[0.1, 5.0]"), "d"))
    assert [r.run_id for r in c.runs()] == [r.run_id for r in d.runs()]
    # a setting at its default is the same run as one left out
    e = experiment.load_experiment(
        write(tmp_path, GOOD.replace("[data]", "[data]\ndtype = 'float64'"), "e.toml")
    )
    assert [r.run_id for r in e.runs()] == [
        r.run_id for r in experiment.load_experiment(write(tmp_path, GOOD)).runs()
    ]


def test_a_huge_option_grid_is_refused_before_it_is_built(tmp_path):
    values = ", ".join(str(0.001 * (i + 1)) for i in range(60))
    text = GOOD.replace(
        'name = "adam"',
        f'name = "adam"\nlearning_rate = [{values}]\nbeta1 = [{values.replace("0.0", "0.")}]'
        f"\nbeta2 = [{values.replace('0.0', '0.')}]\neps = [{values}]",
    )
    with pytest.raises(ConfigError, match=r"has [\d,]+ runs, more than the 100,000 allowed"):
        experiment.load_experiment(write(tmp_path, text))


def test_specs_round_trip_and_older_specs_keep_their_identity():
    exp = experiment.validate(tomllib.loads(GOOD))
    for spec in exp.runs():
        again = experiment.RunSpec.from_dict(spec.to_dict())
        assert again == spec and again.run_id == spec.run_id
    # a spec as nnbench 0.1 stored it (one flat mapping, every field spelled out)
    old = {
        "experiment": "x",
        "dataset": "digits",
        "data_path": None,
        "train_split": "train",
        "val_split": "valid",
        "test_split": "test",
        "dtype": "float64",
        "hidden": [16],
        "activation": "sigmoid",
        "output": "sigmoid",
        "l2": 0.0,
        "init": "auto",
        "optimizer": "gd",
        "options": {"learning_rate": 0.1},
        "batch_size": 32.0,
        "batch_growth": 1.0,
        "seed": 1,
        "max_iter": 30,
        "max_epochs": None,
        "max_grad_evals": None,
        "max_seconds": None,
        "eval_every": 10,
        "tol": None,
    }
    spec = experiment.RunSpec.from_dict(old)
    new = exp.spec("gd", {"learning_rate": 0.1}, hidden=(16,), batch_size=32, seed=1)
    # format 0 evaluated every training row, and the test split at every point: the
    # same run as train_rows = "all" and test_curve = true now
    assert spec.run_id != new.run_id
    values = {**new.values, "train_rows": "all", "test_curve": True}
    new = experiment.RunSpec(**{**new.__dict__, "values": values})
    assert spec.run_id == new.run_id and spec.label == "gd[learning_rate=0.1]"


def test_overrides_replace_parts_of_the_file(tmp_path):
    exp = experiment.load_experiment(
        write(tmp_path, GOOD),
        {
            "grid.seeds": [7],
            "budget.max_epochs": 2,
            "optimizer": [{"name": "cg"}],
            "model.hidden": [[5]],
        },
    )
    runs = exp.runs()
    assert {r.seed for r in runs} == {7} and {r.optimizer for r in runs} == {"cg"}
    assert runs[0].max_epochs == 2 and runs[0].max_iter is None  # the budget is replaced
    assert len(runs) == 2  # two batch sizes


def test_the_shipped_experiment_files_are_valid():
    from pathlib import Path

    files = sorted((Path(__file__).parent.parent / "experiments").glob("*.toml"))
    assert files
    for path in files:
        assert experiment.load_experiment(path).runs()


TUNED = GOOD.replace(
    "learning_rate = [0.1, 0.5]", "learning_rate = { log_uniform = [0.01, 1.0] }"
) + ("[tune]\ntrials = 2\nfinal_seeds = [11]\n")

BAD = [
    ("syntax", 'name = "x"\n[data\n', "not valid TOML"),
    (
        "repeated-setting",
        GOOD + '[[optimizer]]\nname = "gd"\nlearning_rate = 0.5\n',
        r"#3: repeats the setting gd\[learning_rate=0.5\] \(of \[\[optimizer\]\] #1\)",
    ),
    (
        "default-spelled-out",
        GOOD + '[[optimizer]]\nname = "adam"\nlearning_rate = 0.001\n',
        r"#3: repeats the setting adam",
    ),
    ("tuned-twice", TUNED + '[[optimizer]]\nname = "adam"\n', "tunes adam again"),
    (
        "choice-twice",
        TUNED.replace("{ log_uniform = [0.01, 1.0] }", "{ choice = [0.1, 0.1] }"),
        "choice names a value twice",
    ),
    ("finals-seen", TUNED.replace("final_seeds = [11]", "final_seeds = [2, 11]"), "shares seeds 2"),
    ("unknown-top-key", "colour = 1\n" + GOOD, "top level: unknown key colour"),
    (
        "unknown-section-key",
        GOOD.replace("[budget]", "[budget]\nmax_iters = 3"),
        r"\[budget\]: unknown key max_iters; accepted: max_iter",
    ),
    ("no-name", GOOD.replace('name = "small"', ""), "name: must be set"),
    ("traversal-name", GOOD.replace('"small"', '"../../etc"'), "no '/'"),
    ("hidden-name", GOOD.replace('"small"', '".hidden"'), "no leading '.'"),
    (
        "unknown-dataset",
        GOOD.replace('"digits"', '"cifar10"'),
        "dataset: must be one of " + ", ".join(data.available()) + "; got 'cifar10'",
    ),
    (
        "same-splits",
        GOOD.replace('dataset = "digits"', 'dataset = "digits"\ntest = "valid"'),
        "different splits",
    ),
    (
        "bad-dtype",
        GOOD.replace('dataset = "digits"', 'dataset = "digits"\ndtype = "f16"'),
        "dtype: must be one of float32, float64",
    ),
    ("flat-hidden", GOOD.replace("[[16], [8, 8]]", "[16, 8]"), "list of architectures"),
    (
        "zero-units",
        GOOD.replace("[[16], [8, 8]]", "[[0]]"),
        r"each an integer >= 1 and <= 100000; got \[0\]",
    ),
    ("absurd-units", GOOD.replace("[[16], [8, 8]]", "[[10000000]]"), "<= 100000"),
    ("string-units", GOOD.replace("[[16], [8, 8]]", '[["16"]]'), "an integer"),
    ("empty-hidden", GOOD.replace("[[16], [8, 8]]", "[]"), "non-empty list"),
    ("empty-seeds", GOOD.replace("seeds = [1, 2]", "seeds = []"), "empty list"),
    ("negative-seed", GOOD.replace("seeds = [1, 2]", "seeds = [-1]"), ">= 0"),
    ("repeated-seed", GOOD.replace("seeds = [1, 2]", "seeds = [1, 1]"), "twice"),
    ("empty-batches", GOOD.replace("batch_size = [32, 0.1]", "batch_size = []"), "empty list"),
    ("fractional-batch", GOOD.replace("[32, 0.1]", "[32.5]"), "a count of rows"),
    ("string-batch", GOOD.replace("[32, 0.1]", '["32"]'), "a count of rows"),
    ("ambiguous-batch", GOOD.replace("[32, 0.1]", "[1.0]"), 'or "full"; got 1.0'),
    ("negative-budget", GOOD.replace("max_iter = 30", "max_iter = -30"), "> 0; got -30"),
    ("same-value-twice", GOOD.replace("[32, 0.1]", "[20, 20.0]"), "lists 20 twice"),
    ("same-rate-twice", GOOD.replace("[0.1, 0.5]", "[1, 1.0]"), "lists 1.0 twice"),
    (
        "zero-as-test",
        GOOD.replace('dataset = "digits"', 'dataset = "digits"\ntest = 0'),
        "test: must be one of train, valid, test",
    ),
    ("newline-name", GOOD.replace('"small"', '"small\\n"'), "name: must be a word"),
    ("flag-typo-budget", GOOD.replace("max_iter = 30", 'max_iter = "30"'), "an integer > 0"),
    ("float-iterations", GOOD.replace("max_iter = 30", "max_iter = 3.5"), "an integer"),
    ("bad-eval", GOOD.replace("every = 10", 'every = "sometimes"'), "an integer >= 1"),
    ("no-optimizer", GOOD.split("[[optimizer]]")[0], "no optimizer given"),
    (
        "unknown-optimizer",
        GOOD.replace('name = "adam"', 'name = "adma"'),
        "unknown optimizer 'adma'; did you mean adam",
    ),
    ("optimizer-without-name", GOOD.replace('name = "adam"', "learning_rate = 0.1"), "needs name"),
    (
        "unknown-option",
        GOOD.replace('name = "adam"', 'name = "adam"\nlr = 0.1'),
        "unknown option lr",
    ),
    ("bad-option-value", GOOD.replace("[0.1, 0.5]", "[0.1, -0.5]"), "learning_rate=-0.5"),
    ("bad-option-type", GOOD.replace("[0.1, 0.5]", '"fast"'), "'fast' is invalid"),
    ("empty-option-grid", GOOD.replace("[0.1, 0.5]", "[]"), "empty list"),
    (
        "section-not-table",
        "budget = 3\n" + GOOD.replace("[budget]\nmax_iter = 30", ""),
        "must be a table",
    ),
    (
        "huge-grid",
        GOOD.replace("seeds = [1, 2]", f"seeds = {list(range(20000))}"),
        "more than the 100,000 allowed",
    ),
]


@pytest.mark.parametrize("text, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_files_name_the_problem(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        experiment.load_experiment(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_a_missing_file_and_a_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="no such experiment file"):
        experiment.load_experiment(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"cannot be read|not valid TOML"):
        experiment.load_experiment(tmp_path / "bin.toml")


def test_overrides_that_cannot_apply_are_clear_errors():
    with pytest.raises(ConfigError, match=r"cannot override data\.dataset: data is not a table"):
        experiment.apply_overrides({"name": "x", "data": 3}, {"data.dataset": "digits"})
    # a budget flag replaces the whole budget, and keeps the hang limit
    raw = experiment.apply_overrides(
        {"budget": {"max_iter": 5, "hang_seconds": 9}}, {"budget.max_epochs": 2}
    )
    assert raw["budget"] == {"hang_seconds": 9, "max_epochs": 2}
