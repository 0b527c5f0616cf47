"""Experiment files: the format, validation with one clear line per mistake, run ids."""

import pytest

from nnbench import grid
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
    exp = grid.load_experiment(write(tmp_path, GOOD))
    runs = exp.runs()
    # 2 architectures x (2 gd learning rates + adam) x 2 batch sizes x 2 seeds
    assert len(runs) == 2 * 3 * 2 * 2
    labels = {r.label for r in runs}
    assert labels == {"gd[learning_rate=0.1]", "gd[learning_rate=0.5]", "adam"}
    assert {r.arch for r in runs} == {"16", "8-8"}
    assert len({r.run_id for r in runs}) == len(runs)
    assert exp.data == {
        "dataset": "digits",
        "path": None,
        "train": "train",
        "validation": "valid",
        "test": "test",
        "dtype": "float64",
    }


def test_run_ids_are_stable_and_ignore_the_experiment_name(tmp_path):
    a = grid.load_experiment(write(tmp_path, GOOD)).runs()
    b = grid.load_experiment(write(tmp_path, GOOD.replace('"small"', '"other"'), "b.toml"))
    assert [r.run_id for r in a] == [r.run_id for r in b.runs()]
    changed = grid.load_experiment(
        write(tmp_path, GOOD.replace("max_iter = 30", "max_iter = 31"), "c.toml")
    )
    assert not {r.run_id for r in a} & {r.run_id for r in changed.runs()}


def test_overrides_replace_parts_of_the_file(tmp_path):
    exp = grid.load_experiment(
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
        assert grid.load_experiment(path).runs()


BAD = [
    ("syntax", 'name = "x"\n[data\n', "not valid TOML"),
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
        "dataset: must be one of mnist, digits, synthetic; got 'cifar10'",
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
        r"an integer >= 1 and <= 100000; got 0",
    ),
    ("absurd-units", GOOD.replace("[[16], [8, 8]]", "[[10000000]]"), "<= 100000"),
    ("string-units", GOOD.replace("[[16], [8, 8]]", '[["16"]]'), "an integer"),
    ("empty-hidden", GOOD.replace("[[16], [8, 8]]", "[]"), "non-empty list"),
    ("empty-seeds", GOOD.replace("seeds = [1, 2]", "seeds = []"), "empty list"),
    ("negative-seed", GOOD.replace("seeds = [1, 2]", "seeds = [-1]"), ">= 0"),
    ("repeated-seed", GOOD.replace("seeds = [1, 2]", "seeds = [1, 1]"), "twice"),
    ("empty-batches", GOOD.replace("batch_size = [32, 0.1]", "batch_size = []"), "empty list"),
    ("fractional-batch", GOOD.replace("[32, 0.1]", "[32.5]"), "whole count"),
    ("string-batch", GOOD.replace("[32, 0.1]", '["32"]'), "a number > 0"),
    ("no-budget", GOOD.replace("max_iter = 30", ""), "needs at least one of max_iter"),
    ("negative-budget", GOOD.replace("max_iter = 30", "max_iter = -30"), "> 0; got -30"),
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
        grid.load_experiment(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_a_missing_file_and_a_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="no such experiment file"):
        grid.load_experiment(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"cannot be read|not valid TOML"):
        grid.load_experiment(tmp_path / "bin.toml")
