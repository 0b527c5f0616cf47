"""Tuning from flags: --trials, --final-seeds and --tune-seed, as every other setting."""

from pathlib import Path

import pytest

from nnbench import study
from nnbench.cli import build_parser, grid_overrides, main
from nnbench.experiment import apply_overrides, load_experiment, read_toml, validate

TUNE = Path(__file__).resolve().parents[1] / "experiments" / "ci" / "tune.toml"


def from_flags(*flags):
    args = build_parser().parse_args(["run", str(TUNE), *flags])
    raw = read_toml(TUNE)
    return validate(apply_overrides(raw, grid_overrides(args, raw.get("optimizer"))), "flags")


def test_tuning_flags_replace_the_files_tune_table():
    exp = from_flags("--trials", "2", "--final-seeds", "21,22", "--tune-seed", "3")
    assert exp.tune == {"trials": 2, "final_seeds": (21, 22), "tune_seed": 3}
    assert load_experiment(TUNE).tune["trials"] == 4  # the file's own, untouched


def test_tuning_from_flags_runs_what_the_same_file_runs(tmp_path):
    """Two trials and one final seed, from flags and from a file that says so: the
    same runs, the same choice."""
    raw = read_toml(TUNE)
    raw["tune"].update(trials=2, final_seeds=[21])
    raw["optimizer"] = raw["optimizer"][:1]
    raw["budget"] = {"max_epochs": 0.5}
    by_file = validate(raw, "file")
    by_flags = from_flags("--trials", "2", "--final-seeds", "21", "--optimizers", "momentum",
                          "--epochs", "0.5")  # fmt: skip
    assert by_flags.tune == by_file.tune
    assert [r.run_id for r in by_flags.runs()] == [r.run_id for r in by_file.runs()]
    a = study.run_experiment(by_file, tmp_path / "a", log=None)
    b = study.run_experiment(by_flags, tmp_path / "b", log=None)
    assert a.statuses == b.statuses and sum(a.statuses.values()) == 2 * 2 + 1


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--trials", "0"], "--trials"),
        (["--final-seeds", "1,2"], "shares seeds 1, 2 with [grid] seeds"),
        (["--tune-seed", "x"], "--tune-seed"),
    ],
)
def test_bad_tuning_flags_are_one_clear_line(flags, said, capsys):
    try:
        code = main(["run", str(TUNE), *flags, "--plan"])
    except SystemExit as stop:  # argparse's own exit for a flag of the wrong type
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
