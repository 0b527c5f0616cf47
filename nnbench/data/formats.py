"""Reading data files safely: the post's pickle and the original IDX files.

Nothing here trusts a file: the pickle reader calls only the functions that
rebuild numpy arrays, every size is checked against a limit before memory is
spent on it, and every failure is one :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from nnbench.errors import DataError, NnbenchError
from nnbench.fileio import is_regular_file, read_limited

# One split of a dataset: its rows X and their labels y. Defined here, once.
Split = tuple[np.ndarray, np.ndarray]
SPLITS = ("train", "valid", "test")
N_FEATURES = 784
N_CLASSES = 10
# The post's pickle holds pixel / 256 (its largest value is 255/256), so the
# IDX loader scales the same way and both sources give identical features.
PIXEL_SCALE = 256.0
# MNIST's pickle is 220 MB once decompressed, its largest IDX file 47 MB: a
# file that decompresses past this is not MNIST (a decompression bomb, say).
MAX_DECOMPRESSED = 1 << 30
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)


def _check_regular(path: Path) -> None:
    """A data file must be a regular file: a FIFO would block its reader forever."""
    if path.exists() and not path.is_dir() and not is_regular_file(path):
        raise DataError(f"{path}: not a regular file; give the data file itself")


def read_gzip(path: Path, what: str) -> bytes:
    """The decompressed bytes of a gzip file, within :data:`MAX_DECOMPRESSED`."""
    _check_regular(path)
    try:
        with gzip.open(path, "rb") as fh:
            return read_limited(fh, MAX_DECOMPRESSED, str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except NnbenchError as exc:
        raise DataError(str(exc)) from None
    except _DECOMPRESS_ERRORS as exc:
        raise DataError(
            f"{path}: not a readable {what} ({exc}); it is truncated or corrupt, "
            "fetch it again with `nnbench data fetch mnist --force`"
        ) from None


# -- the pickle ---------------------------------------------------------------------

# A pickle names the callables it calls when loaded. The post's file needs
# three, which rebuild arrays and dtypes; pickles of arrays written by Python 3
# add the byte-string and buffer constructors. Nothing here can run code;
# anything else (os.system, builtins.eval, ...) is refused before it is called.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _SAFE_GLOBALS:
            raise DataError(
                f"refusing to load {module}.{name} from the pickle: only numpy arrays "
                "and plain containers are accepted (the file is not the MNIST pickle)"
            )
        return super().find_class(module, name)


def safe_unpickle(raw: bytes) -> object:
    """Unpickle ``raw`` allowing numpy arrays and plain containers only."""
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
        _reject_objects(obj)
    except DataError:
        raise
    except RecursionError:
        raise DataError("the pickle is nested too deeply to be data") from None
    except Exception as exc:  # any malformed pickle stream
        raise DataError(f"not a valid pickle ({type(exc).__name__}: {exc})") from None
    return obj


def _reject_objects(obj: object) -> None:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise DataError("the pickle holds an object array; only numeric arrays are accepted")
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _reject_objects(item)


def load_mnist_pickle(path: str | os.PathLike) -> tuple[Split, Split, Split]:
    """The post's ``mnist.pkl.gz``: ``(train, valid, test)``, each ``(X, y)``."""
    path = Path(path)
    raw = read_gzip(path, "gzip file")
    try:
        obj = safe_unpickle(raw)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise DataError(f"{path}: expected a (train, valid, test) triple of (X, y) pairs")
    splits = []
    for name, part in zip(SPLITS, obj):
        if not (isinstance(part, (tuple, list)) and len(part) == 2):
            raise DataError(f"{path}: the {name} split is not an (X, y) pair")
        splits.append(validate_split(part[0], part[1], f"{path}: {name}"))
    return splits[0], splits[1], splits[2]


def validate_split(
    X: object,
    y: object,
    where: str,
    n_features: int | None = N_FEATURES,
    n_classes: int | None = N_CLASSES,
) -> Split:
    """Check one split's shapes and values; return it as float32 features, int64 labels."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{where}: features and labels must be numpy arrays")
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        want = f"(n, {n_features})" if n_features else "(n, n_features)"
        raise DataError(f"{where}: features have shape {X.shape}, expected {want}")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"{where}: labels have shape {y.shape}, expected ({len(X)},)")
    if not np.issubdtype(X.dtype, np.number) or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    ):
        raise DataError(f"{where}: features and labels must be numeric")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise DataError(f"{where}: features contain NaN or infinity")
    if X.size and (X.min() < 0 or X.max() >= 1):
        raise DataError(f"{where}: features must lie in [0, 1); got [{X.min()}, {X.max()}]")
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise DataError(f"{where}: labels must be whole numbers")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or (n_classes is not None and y.max() >= n_classes)):
        raise DataError(f"{where}: labels must lie in [0, {n_classes}); got [{y.min()}, {y.max()}]")
    return X, y


# -- the IDX files ------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (gzipped or not) as an array."""
    path = Path(path)
    _check_regular(path)
    if path.suffix == ".gz":
        raw = read_gzip(path, "IDX file")
    else:
        try:
            with open(path, "rb") as fh:
                raw = read_limited(fh, MAX_DECOMPRESSED, str(path))
        except FileNotFoundError:
            raise DataError(f"{path}: no such file") from None
        except NnbenchError as exc:
            raise DataError(str(exc)) from None
        except OSError as exc:
            raise DataError(f"{path}: not readable ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    n_dims = raw[3]
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{n_dims}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    # Python integers: the product of the dimensions cannot wrap around
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: holds {len(raw) - header} data bytes, its header promises {expected} "
            f"(dimensions {shape}); the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"{folder}: missing {stem}[.gz]")


def load_mnist_idx(folder: str | os.PathLike, n_train: int = 50_000) -> tuple[Split, Split, Split]:
    """MNIST from the original IDX files in ``folder``, split as the post's pickle:
    the first ``n_train`` of every 60,000 training images train, the rest validate."""
    folder = Path(folder)
    arrays = {}
    for prefix in ("train", "t10k"):
        images = read_idx(find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{folder}: {prefix} images {images.shape} and labels {labels.shape} do not match"
            )
        X = images.reshape(len(images), -1).astype(np.float32) / np.float32(PIXEL_SCALE)
        arrays[prefix] = (X, labels)
    X, y = arrays["train"]
    cut = len(X) * n_train // 60_000
    parts = ((X[:cut], y[:cut]), (X[cut:], y[cut:]), arrays["t10k"])
    n_features = arrays["train"][0].shape[1]
    return tuple(  # type: ignore[return-value]
        validate_split(Xs, ys, f"{folder}: {name}", n_features=n_features)
        for name, (Xs, ys) in zip(SPLITS, parts)
    )
