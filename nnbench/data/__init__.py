"""Datasets, by name: a registry of loaders, built-in and from plugins.

Built in: ``mnist`` (the post's data, fetched once into a cache), ``digits``
(scikit-learn's 8x8 digits, shipped with it) and ``synthetic`` (Gaussian
blobs). A new dataset is one module that calls :func:`register`, plus its
line in :data:`BUILTIN_MODULES`; a third-party package declares a
:class:`DatasetInfo` as an entry point::

    [project.entry-points."nnbench.datasets"]
    fashion = "mypackage.data:FASHION"

Every loader returns a :class:`Dataset` whose splits are ``(X, y)`` pairs:
``X`` floats in ``[0, 1)`` of shape ``(n_samples, n_features)``, ``y`` int64
class indices.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from nnbench.errors import DataError

Split = tuple[np.ndarray, np.ndarray]
Progress = Callable[[str], None]
ENTRY_POINT_GROUP = "nnbench.datasets"
BUILTIN_MODULES = ("nnbench.data.mnist", "nnbench.data.digits", "nnbench.data.synthetic")
BUILTIN_ORDER = ("mnist", "digits", "synthetic")


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

    def split(self, name: str | None) -> Split | None:
        """A split by its name in experiment files: train, valid or test."""
        if name is None:
            return None
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


@dataclass(frozen=True)
class LoadRequest:
    """What a loader is asked for.

    ``data_dir``: the cache folder chosen by the user (None: the default);
    ``path``: a file or folder the user named (only for loaders that take one);
    ``mmap``: memory-map cached arrays rather than read them;
    ``progress``: where to say what is happening (fetching, say).
    """

    data_dir: str | Path | None = None
    path: str | Path | None = None
    mmap: bool = False
    progress: Progress | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    ``load(request) -> Dataset``. ``shape`` is ``(n_features, n_classes)`` when
    known without loading (it lets an experiment's network sizes be checked
    first). ``fingerprint(request) -> str`` names the dataset's content, for
    the shared copies parallel workers map; by default the name, right for
    data generated the same way every time.
    """

    name: str
    load: Callable[[LoadRequest], Dataset]
    summary: str
    shape: tuple[int, int] | None = None
    takes_path: bool = False
    fingerprint: Callable[[LoadRequest], str] | None = field(default=None, compare=False)

    def content_id(self, request: LoadRequest) -> str:
        return self.fingerprint(request) if self.fingerprint else self.name


def split_three(name: str, X: np.ndarray, y: np.ndarray, seed: int, n_classes: int) -> Dataset:
    """Train, validation and test: 60%, 20% and 20% of a fixed permutation of the rows."""
    order = np.random.default_rng(seed).permutation(len(X))
    a, b = int(0.6 * len(X)), int(0.8 * len(X))
    parts = [(X[idx], y[idx]) for idx in (order[:a], order[a:b], order[b:])]
    return Dataset(name, parts[0], parts[1], parts[2], n_classes)


_REGISTRY: dict[str, DatasetInfo] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_loaded = False


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry under ``info.name``."""
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"{info!r} is not a DatasetInfo")
    if not info.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"dataset name {info.name!r} must be letters, digits, _ and -")
    _REGISTRY[info.name] = info
    return info


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue  # built-ins win
        try:
            info = ep.load()
            if not isinstance(info, DatasetInfo) or info.name != ep.name:
                raise TypeError(f"{ep.value} is not a DatasetInfo named {ep.name!r}")
            register(info)
        except Exception as exc:  # a broken plugin must not break the harness
            _PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"


def available() -> dict[str, DatasetInfo]:
    """Every registered dataset, built-ins first."""
    _load_all()
    rank = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def plugin_errors() -> dict[str, str]:
    _load_all()
    return dict(_PLUGIN_ERRORS)


def get(name: str) -> DatasetInfo:
    """The dataset registered as ``name``; an unknown name suggests close ones."""
    known = available()
    if name in known:
        return known[name]
    if name in _PLUGIN_ERRORS:
        raise DataError(f"dataset {name!r} failed to load: {_PLUGIN_ERRORS[name]}")
    close = difflib.get_close_matches(str(name), list(known), n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise DataError(f"unknown dataset {name!r}{hint} (known: {', '.join(known)})")


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    mmap: bool = False,
    path: str | Path | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """A dataset by name (``nnbench data list`` shows them)."""
    info = get(name)
    if path is not None and not info.takes_path:
        raise DataError(f"dataset {name!r} takes no path")
    return info.load(LoadRequest(data_dir, path, mmap, progress))


# The public functions of the parts, importable from here as before the split.
from nnbench.data.cache import cache_dir, file_digest  # noqa: E402
from nnbench.data.formats import read_idx, safe_unpickle, validate_split  # noqa: E402
from nnbench.data.mnist import (  # noqa: E402
    fetch_mnist,
    load_mnist,
    load_mnist_idx,
    load_mnist_pickle,
    mnist_info,
)
from nnbench.data.shared import SharedData, share_dataset  # noqa: E402
from nnbench.data.synthetic import make_synthetic  # noqa: E402

__all__ = [
    "Dataset",
    "DatasetInfo",
    "LoadRequest",
    "SharedData",
    "available",
    "cache_dir",
    "fetch_mnist",
    "file_digest",
    "get",
    "load_dataset",
    "load_mnist",
    "load_mnist_idx",
    "load_mnist_pickle",
    "make_synthetic",
    "mnist_info",
    "read_idx",
    "register",
    "safe_unpickle",
    "share_dataset",
    "split_three",
    "validate_split",
]
