"""Fuzzing every input (slow tier): experiment files, command lines, pickles, IDX
files, Parquet files and baselines, drawn by hypothesis.

The invariant, whatever the input: success, or one line naming the problem
and exit 2 (1 for a failed check); never a traceback, never a hang (every
example has a deadline).
"""

import contextlib
import gzip
import io
import json
import pickle
import string
import struct
import tomllib
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnbench import data, experiment, results, runner, study
from nnbench import settings as schema
from nnbench.errors import ConfigError, DataError

from .test_bad_input import run_cli
from .test_experiment import GOOD

pytestmark = pytest.mark.slow
DEADLINE = timedelta(seconds=20)
FUZZ = settings(
    max_examples=150,
    deadline=DEADLINE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

toml_scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(),
    st.text(string.ascii_letters + "_-./ \n", max_size=12),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "log_uniform"]), inner)
    ),
    max_leaves=8,
)


@st.composite
def mutated_experiments(draw):
    """A valid experiment with some keys replaced by arbitrary values."""
    raw = tomllib.loads(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*sorted(s for s in schema.SECTIONS if s), "", "optimizer"]))
        value = draw(toml_values)
        if section == "":
            raw[draw(st.sampled_from(["name", "description", "extra", "tune"]))] = value
        elif section == "optimizer":
            raw["optimizer"][0][draw(st.sampled_from(["name", "learning_rate", "x"]))] = value
        else:
            key = draw(st.sampled_from([*schema.section_keys(section), "unknown"]))
            if not isinstance(raw.get(section), dict):  # a scalar drawn for it before
                raw[section] = {}
            raw[section][key] = value
    return raw


def assert_clean(code, err, allowed=(0, 2)):
    """An allowed exit code; on failure one error line, last, after any one-line warnings."""
    assert code in allowed, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(line.startswith(("nnbench: warning: ", "nnbench: error: ")) for line in lines), err
    if code == 2:
        assert lines[-1].startswith("nnbench: error: ") and err.count("nnbench: error") == 1


@FUZZ
@given(mutated_experiments())
def test_property_validation_accepts_or_names_the_problem(raw):
    try:
        exp = experiment.validate(raw, "prop.toml")
    except ConfigError as exc:
        assert str(exc).startswith("prop.toml: ") and "\n" not in str(exc)
        return
    if exp.tune is None:
        runs = exp.runs()
        assert len(runs) == exp.n_runs and len({r.run_id for r in runs}) == len(runs)


@FUZZ
@given(st.text(max_size=300))
def test_property_any_text_as_an_experiment_file(tmp_path_factory, capsys, text):
    path = tmp_path_factory.mktemp("p") / "x.toml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "run", path, "--out", path.parent / "out")
    assert_clean(code, err, allowed=(2,))


# -- command lines --------------------------------------------------------------------------

COMMANDS = ["run", "train", "report", "baseline", "check", "compare", "list", "config", "data"]
FLAGS = sorted(
    {f for s in schema.SCHEMA for f in s.flags if f}
    | {
        "-j",
        "--threads",
        "--backend",
        "--scheduler",
        "--out",
        "--optimizers",
        "--option",
        "-o",
        "--optimizer",
        "--target",
        "--tol",
        "--baseline",
        "--strict",
        "--figures",
        "--merge",
        "--force",
        "--bogus",
    }
)
values = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "2",
            "0.5",
            "1e9",
            "nan",
            "inf",
            "full",
            "epoch",
            "none",
            "gd",
            "adam",
            "digits",
            "synthetic",
            "mnist",
            "25,10",
            "[1, 2]",
            "",
            "gd.learning_rate=0.1",
            "learning_rate=2",
            "tcp://127.0.0.1:9",
            "/",
        ]
    ),
    st.text(string.printable, max_size=10),
)


@st.composite
def command_lines(draw):
    argv = [draw(st.sampled_from(COMMANDS))]
    if argv[0] == "data":
        argv.append(draw(st.sampled_from(["fetch", "info", "list", "x"])))
    for _ in range(draw(st.integers(0, 6))):
        argv.append(draw(st.sampled_from(FLAGS)))
        if draw(st.booleans()):
            argv.append(draw(values))
    if draw(st.booleans()):
        argv.insert(1, draw(values))
    return argv


@pytest.fixture
def no_heavy_work(monkeypatch, tmp_path):
    """Keep fuzzed commands to their parsing and checking: no grid is run, no
    MNIST loaded, no cluster started, nothing fetched."""
    from nnbench import backends, build
    from nnbench.train import TrainResult

    def run_experiment(experiment, out_dir=None, execution=None, **kwargs):
        options = {k: v for k, v in kwargs.items() if k in runner.Execution.__dataclass_fields__}
        ex = execution or runner.Execution(**options)
        backends.check_jobs(ex.n_jobs, ex.threads)
        backends.make(ex.backend, ex.n_jobs, ex.scheduler)
        return runner.GridSummary(tmp_path / "none", experiment.n_runs)

    def load_dataset(name, **kwargs):
        data.get(name)
        return data.make_synthetic(seed=0)

    def fetch(*args, **kwargs):
        raise DataError("no fetching while fuzzing")

    def train_it(self, callback=None, heartbeat=None):
        row = dict.fromkeys(
            (
                "iteration",
                "epoch",
                "grad_evals",
                "train_cost",
                "val_accuracy",
                "test_accuracy",
                "train_seconds",
            ),
            0.0,
        )
        return TrainResult(self.theta, [row], "completed")

    monkeypatch.setattr(study, "run_experiment", run_experiment)
    monkeypatch.setattr(data, "load_dataset", load_dataset)
    monkeypatch.setattr(data, "fetch_mnist", fetch)
    monkeypatch.setattr(build.Run, "__call__", train_it)
    monkeypatch.chdir(tmp_path)


@FUZZ
@given(command_lines())
def test_property_any_command_line(no_heavy_work, capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert_clean(code, err, allowed=(0, 1, 2) if argv[0] in ("check", "compare") else (0, 2))


# -- data files ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=600))
def test_property_arbitrary_bytes_as_a_data_file(tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("d")
    for name, payload in (("raw.pkl.gz", blob), ("gz.pkl.gz", gzip.compress(blob))):
        (folder / name).write_bytes(payload)
        with pytest.raises(DataError):
            data.load_mnist(folder / name)
    (folder / "train-images-idx3-ubyte").write_bytes(blob)
    with contextlib.suppress(DataError):
        data.read_idx(folder / "train-images-idx3-ubyte")


@FUZZ
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.lists(st.integers(0, 2**32 - 1), max_size=5),
    st.binary(max_size=64),
)
def test_property_idx_headers(tmp_path_factory, code, n_dims, dims, body):
    """Any type code, dimension count and dimensions: an array or one DataError, at once."""
    path = tmp_path_factory.mktemp("i") / "x-idx1-ubyte"
    path.write_bytes(bytes([0, 0, code, n_dims]) + struct.pack(f">{len(dims)}I", *dims) + body)
    try:
        array = data.read_idx(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert array.ndim == n_dims


pickled = st.recursive(
    st.one_of(
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=8),
        st.builds(lambda n: np.zeros(n, dtype=np.float32), st.integers(0, 4)),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner)),
    max_leaves=10,
)


@FUZZ
@given(pickled, st.integers(0, 5))
def test_property_pickles_of_anything(tmp_path_factory, obj, protocol):
    path = tmp_path_factory.mktemp("k") / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=protocol)))
    with pytest.raises(DataError):
        data.load_mnist(path)


# -- results and baselines -------------------------------------------------------------------

columns = st.dictionaries(
    st.sampled_from(
        [
            "run_id",
            "label",
            "optimizer",
            "hidden",
            "batch_size",
            "seed",
            "iteration",
            "val_accuracy",
            "status",
            "x",
        ]
    ),
    st.sampled_from(["int", "float", "str"]),
    max_size=8,
)
metadata = st.one_of(
    st.none(),
    st.just(
        {"format": 1, "spec": {"format": 1, "optimizer": "gd", "values": {}}, "status": "completed"}
    ),
    st.dictionaries(st.sampled_from(["format", "spec", "status", "x"]), toml_values, max_size=4),
)


@FUZZ
@given(columns, metadata, st.integers(0, 3))
def test_property_parquet_files_with_any_columns_and_metadata(
    tmp_path_factory, capsys, cols, meta, n_rows
):
    folder = tmp_path_factory.mktemp("r")
    (folder / "runs").mkdir()
    make = {"int": lambda i: i, "float": lambda i: i / 3, "str": lambda i: f"v{i}"}
    frame = pd.DataFrame({c: [make[k](i) for i in range(n_rows)] for c, k in cols.items()})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if meta is not None:
        table = table.replace_schema_metadata({b"nnbench": json.dumps(meta).encode()})
    pq.write_table(table, folder / "runs" / "0123456789abcdef.parquet")
    for args in (("report", folder), ("baseline", folder, "--out", folder / "b.json", "--quiet")):
        code, _, err = run_cli(capsys, *args)
        assert_clean(code, err)
    results.stored_runs(folder)  # never raises


baseline_values = st.recursive(
    toml_scalars | st.none(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def baselines(draw):
    """A baseline file's JSON: some of its keys, any values."""
    raw = {"format": "nnbench-baseline", "version": draw(st.sampled_from([1, 2, 3, "2"]))}
    for key in draw(
        st.lists(st.sampled_from(["configurations", "metric", "environment", "x"]), max_size=4)
    ):
        raw[key] = draw(baseline_values)
    if draw(st.booleans()):
        raw["configurations"] = [
            {
                k: draw(baseline_values)
                for k in draw(
                    st.lists(
                        st.sampled_from(
                            ["config_id", "label", "seeds", "rounding", "mode", "floor"]
                        ),
                        max_size=6,
                    )
                )
            }
        ]
    return raw


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    exp = experiment.validate(
        {
            "name": "s",
            "data": {"dataset": "digits"},
            "grid": {"seeds": [1, 2]},
            "budget": {"max_iter": 10},
            "optimizer": [{"name": "gd"}],
        }
    )
    study.run_experiment(exp, folder, log=None)
    return folder


@FUZZ
@given(baselines())
def test_property_baselines_of_any_shape(tmp_path_factory, capsys, small_results, raw):
    path = tmp_path_factory.mktemp("b") / "baseline.json"
    path.write_text(json.dumps(raw))
    code, _, err = run_cli(capsys, "check", small_results, "--baseline", path)
    assert_clean(code, err, allowed=(1, 2))


def test_a_deeply_nested_baseline_is_one_line(tmp_path, capsys, small_results):
    path = tmp_path / "deep.json"
    path.write_text(
        '{"format": "nnbench-baseline", "version": 2, "configurations": '
        + "[" * 100_000
        + "]" * 100_000
        + "}"
    )
    code, _, err = run_cli(capsys, "check", small_results, "--baseline", path)
    assert_clean(code, err, allowed=(2,))


def test_io_is_not_needed_for_an_empty_parquet(tmp_path):
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": []}), buf)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "e.parquet").write_bytes(buf.getvalue())
    with pytest.warns(results.ResultsWarning):
        assert results.load(tmp_path).empty
