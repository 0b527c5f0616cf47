"""The command line: output, exit codes, and one-line errors without tracebacks."""

import subprocess
import sys

import pytest

from nnbench import data
from nnbench.cli import main


def nnbench(*args):
    """Run the real console entry point in a subprocess: what a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "nnbench.cli", *args], capture_output=True, text=True
    )


class Done:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    """Run ``main`` in this process (fast), as the console script would."""

    def run(*args):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def test_list_shows_every_optimizer_with_its_options(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "gd",
        "momentum",
        "rmsprop",
        "rmsprop_blog",
        "cg",
        "lbfgsb",
        "nesterov",
        "adagrad",
        "adam",
        "signsgd",
    ):
        assert f"\n{name}: " in "\n" + out
    assert "learning_rate = 0.3" in out and "mb_maxiter = 10" in out
    assert "broken: plugin failed to load" in out


def test_train_on_a_small_dataset(capsys):
    code = main(
        [
            "train",
            "--dataset",
            "synthetic",
            "--hidden",
            "16",
            "--optimizer",
            "adam",
            "--option",
            "learning_rate=0.01",
            "--max-iter",
            "60",
            "--eval-every",
            "20",
            "--batch-size",
            "0.1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "adam[learning_rate=0.01] on synthetic (20, 16, 3): completed" in out
    assert out.count("\n") == 6  # header, 4 evaluation rows, summary


def test_renamed_flags_still_work_for_one_release_and_say_so(capsys, tmp_path):
    base = ["train", "--dataset", "synthetic", "--max-iter", "5", "--eval-every", "5"]
    assert main([*base, "-o", "adam", "--output", "softmax"]) == 0
    captured = capsys.readouterr()
    assert "adam on synthetic" in captured.out
    assert "nnbench: warning: -o is deprecated and goes in the next release; use --optimizer" in (
        captured.err
    )
    assert "--output is deprecated and goes in the next release; use --output-layer" in captured.err
    assert main([*base, "--data-option", "noise=0.3", "--data-option", "n_samples=100"]) == 0
    assert "on synthetic (20, 25, 3)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--optimizer", "adamw", "--dataset", "digits"], "unknown optimizer 'adamw'"),
        (["train", "--dataset", "digits", "--option", "learning_rate=-1"], "learning_rate=-1"),
        (["train", "--dataset", "digits", "--option", "lr=0.1"], "unknown option lr"),
        (["train", "--dataset", "digits", "--option", "learning_rate=fast"], "'fast' is invalid"),
        (
            ["train", "--dataset", "digits", "--optimizer", "cg", "--option", "mb_maxiter=2.5"],
            "integer",
        ),
    ],
)
def test_bad_options_are_one_line_errors(cli, args, message):
    done = cli(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--hidden", "25,x"], "expected layer sizes like 500,300"),
        (["train", "--hidden", "0"], "each an integer >= 1"),
        (["train", "--batch-size", "big"], "expected a count of rows"),
        (["train", "--batch-size", "-1"], "> 0"),
        (["train", "--eval-every", "0"], '"epoch" or an integer'),
        (["train", "--dataset", "cifar"], "expected one of " + ", ".join(data.available())),
        (["train", "--option", "novalue"], "KEY=VALUE"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_are_usage_errors(cli, args, message):
    done = cli(*args)
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # a real child process: seconds of start-up
def test_a_user_error_in_a_real_process_has_no_traceback():
    done = nnbench("train", "--dataset", "digits", "--optimizer", "adamw")
    assert done.returncode == 2 and done.stderr.startswith("nnbench: error: unknown optimizer")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.slow  # a real child process: seconds of start-up
def test_debug_shows_the_traceback():
    done = nnbench("--debug", "train", "--dataset", "digits", "--optimizer", "nope")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_data_info_on_an_empty_cache(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "nothing cached" in out


def test_a_damaged_data_file_is_one_line(cli, tmp_path):
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    (cache / "manifest.json").write_text("{not json")
    done = cli("train", "--data-dir", str(tmp_path / "cache"))
    assert done.returncode == 2 and "damaged" in done.stderr and "--force" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_failed_forced_rerun_is_an_error_exit(cli, tmp_path, monkeypatch):
    """The earlier result is kept (never replaced by a failure), but the folder
    no longer shows what the code does: a CI that reruns with --force then
    checks must not pass on the old results."""
    from collections import Counter

    from nnbench import runner, study

    def fake(experiment, **kw):
        return runner.GridSummary(tmp_path, 2, statuses=Counter(completed=1), n_kept=1)

    monkeypatch.setattr(study, "run_experiment", fake)
    done = cli("run", "--optimizers", "gd", "--dataset", "digits", "--force", "--quiet")
    assert done.returncode == 1
    assert "1 forced rerun(s) failed, and their earlier results were kept" in done.stderr
    monkeypatch.setattr(
        study,
        "run_experiment",
        lambda e, **kw: runner.GridSummary(tmp_path, 1, statuses=Counter(completed=1)),
    )
    assert cli("run", "--optimizers", "gd", "--dataset", "digits", "--quiet").returncode == 0


def test_a_grid_whose_runs_all_completed_prints_its_table(capsys, tmp_path):
    # every run "completed": the stored status column is one category, which
    # pandas maps to a categorical that cannot be summed
    out = tmp_path / "grid"
    code = main(
        ["run", "--dataset", "synthetic", "--optimizers", "gd,adam", "--hidden", "8",
         "--seeds", "1,2", "--max-iter", "5", "--name", "all-ok", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    table = [line for line in printed.splitlines() if line.startswith(("adam", "gd"))]
    assert len(table) == 2 and all(" 2 " in line for line in table), printed
