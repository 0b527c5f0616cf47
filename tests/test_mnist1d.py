"""MNIST-1D: listed, equal to the mnist1d package's make_dataset, cached with checksums, offline."""

import socket

import numpy as np
import pytest

from nnbench.cli import main
from nnbench.data import load_dataset
from nnbench.data.mnist1d import FOLDER, make_mnist1d

OTHER = {
    "n_samples": 600,
    "seed": 7,
    "scale_coeff": 0.2,
    "max_translation": 30,
    "corr_noise_scale": 0.5,
    "iid_noise_scale": 0.05,
    "shear_scale": 1.5,
}


def _package(mnist1d_data, **options):
    """The package's own arrays for these options (its other arguments at their defaults)."""
    args = mnist1d_data.get_dataset_args()
    names = {"n_samples": "num_samples"}
    for key, value in options.items():
        setattr(args, names.get(key, key), value)
    return mnist1d_data.make_dataset(args)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Generation is offline: any socket opened during a test here fails it."""

    def refuse(*args, **kwargs):
        raise AssertionError("MNIST-1D tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_listed(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d: MNIST-1D" in out and "corr_noise_scale = 0.25" in out


@pytest.mark.parametrize("options", [{}, OTHER], ids=["defaults", "other"])
def test_equals_package_make_dataset(options):
    mnist1d_data = pytest.importorskip("mnist1d.data")
    ref = _package(mnist1d_data, **options)
    (x, y), (x_test, y_test) = make_mnist1d(**options)
    # bit for bit: same values, dtypes and shapes
    for ours, theirs in ((x, ref["x"]), (y, ref["y"]), (x_test, ref["x_test"])):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert np.array_equal(y_test, ref["y_test"])


def test_splits_carve_valid_from_train_only():
    ds = load_dataset("mnist1d", options={"n_samples": 500, "valid_fraction": 0.25})
    (x, _), (x_test, y_test) = make_mnist1d(n_samples=500)
    assert len(ds.train[0]) == 300 and len(ds.valid[0]) == 100 and ds.n_features == 40
    assert np.array_equal(ds.test[0], x_test) and np.array_equal(ds.test[1], y_test)
    both = np.concatenate([ds.train[0], ds.valid[0]])
    assert {r.tobytes() for r in both} == {r.tobytes() for r in x}


def test_cache_is_checksummed_and_rebuilt_when_damaged(tmp_path):
    options = {"n_samples": 200}
    first = load_dataset("mnist1d", options=options)
    folders = list((tmp_path / "cache" / FOLDER).iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    target = folders[0] / "train_X.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF  # one flipped byte in the data, the .npy header still valid
    target.write_bytes(bytes(raw))
    said: list[str] = []
    again = load_dataset("mnist1d", options=options, progress=said.append)
    assert len(said) == 1 and "train_X.npy does not match its checksum" in said[0]
    assert "generating MNIST-1D again" in said[0]
    assert np.array_equal(again.train[0], first.train[0])
    said.clear()
    load_dataset("mnist1d", options=options, progress=said.append, mmap=True)
    assert said == []  # rebuilt and verified: read from the cache silently
