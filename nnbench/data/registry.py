"""The dataset registry: built-ins by name, plugins by entry point.

A dataset is a :class:`DatasetInfo` registered under its name: a loader, and
optionally the settings it takes (``options``, declared with
:class:`~nnbench.options.Option` as optimizers declare theirs, set in an
experiment file's ``[data]`` table or with ``--data-option``), a way to
fetch it into the cache, what it holds there, and files already prepared
for the runs to memory-map. Generic code asks the registry; it never names
a dataset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnbench.data.formats import Split
from nnbench.errors import ConfigError, DataError
from nnbench.options import Option
from nnbench.registry import Registry

Progress = Callable[[str], None]
ENTRY_POINT_GROUP = "nnbench.datasets"


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
    ``progress``: where to say what is happening (fetching, say);
    ``options``: the dataset's declared options, every one (defaults filled in).
    """

    data_dir: str | Path | None = None
    path: str | Path | None = None
    mmap: bool = False
    progress: Progress | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    ``load(request) -> Dataset``. ``shape`` is ``(n_features, n_classes)`` when
    known without loading (it lets an experiment's network sizes be checked
    first), or a function of the options. ``options``: the settings it takes.
    ``fingerprint(request) -> str`` names the dataset's content, for the
    shared copies parallel workers map; by default the name and the options,
    right for data generated the same way every time. ``fetch(data_dir,
    force, progress, show_bar) -> Path``: put it in the cache (``nnbench data
    fetch``). ``cached(data_dir) -> list of dicts``: the files it keeps there
    (``nnbench data info``). ``prepared(request, dtype) -> folder or None``: a
    folder of the cache already holding ``<split>_X.npy`` and ``<split>_y.npy``
    in that dtype, verified, that runs can map as they are.
    """

    name: str
    load: Callable[[LoadRequest], Dataset]
    summary: str
    shape: tuple[int, int] | Callable[[Mapping[str, Any]], tuple[int, int]] | None = None
    takes_path: bool = False
    fingerprint: Callable[[LoadRequest], str] | None = field(default=None, compare=False)
    options: Mapping[str, Option] = field(default_factory=dict, compare=False)
    fetch: Callable[..., Path] | None = field(default=None, compare=False)
    cached: Callable[[Any], list[dict]] | None = field(default=None, compare=False)
    prepared: Callable[[LoadRequest, str], Path | None] | None = field(default=None, compare=False)

    def content_id(self, request: LoadRequest) -> str:
        if self.fingerprint:
            return self.fingerprint(request)
        given = self.given(request.options)
        if not given:
            return self.name
        digest = hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.name}-{digest}"

    def shape_of(self, options: Mapping[str, Any]) -> tuple[int, int] | None:
        return self.shape(self.with_defaults(options)) if callable(self.shape) else self.shape

    def with_defaults(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every option: the given ones (checked), the others at their defaults."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise ConfigError(
                f"dataset {self.name!r} takes no option {', '.join(unknown)}; it takes {accepted}"
            )
        out = {}
        for key, opt in self.options.items():
            try:
                out[key] = opt.convert(options.get(key, opt.default))
            except ValueError as exc:
                raise ConfigError(
                    f"dataset {self.name!r}: option {key}={options.get(key)!r} is invalid; it "
                    f"takes {exc} (default {opt.default!r})"
                ) from None
        return out

    def given(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options that differ from their defaults, canonical: what identity hashes."""
        full = self.with_defaults(options)
        return {k: v for k, v in full.items() if v != self.options[k].default}


def split_three(name: str, X: np.ndarray, y: np.ndarray, seed: int, n_classes: int) -> Dataset:
    """Train, validation and test: 60%, 20% and 20% of a fixed permutation of the rows."""
    order = np.random.default_rng(seed).permutation(len(X))
    a, b = int(0.6 * len(X)), int(0.8 * len(X))
    parts = [(X[idx], y[idx]) for idx in (order[:a], order[a:b], order[b:])]
    return Dataset(name, parts[0], parts[1], parts[2], n_classes)


def _accept(info: Any, name: str) -> DatasetInfo:
    if not isinstance(info, DatasetInfo) or info.name != name:
        raise TypeError(f"{name!r} is not a DatasetInfo named {name!r}")
    return info


_REGISTRY: Registry[DatasetInfo] = Registry("dataset", ENTRY_POINT_GROUP, _accept, DataError)


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry under ``info.name`` (the built-ins register
    themselves on import of :mod:`nnbench.data`)."""
    if not isinstance(info, DatasetInfo):
        raise TypeError(f"{info!r} is not a DatasetInfo")
    if not info.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"dataset name {info.name!r} must be letters, digits, _ and -")
    _REGISTRY.register(info.name, info)
    return info


def available() -> dict[str, DatasetInfo]:
    """Every registered dataset, in the order registered: built-ins, then plugins."""
    return _REGISTRY.available()


def plugin_errors() -> dict[str, str]:
    return _REGISTRY.errors()


def get(name: str) -> DatasetInfo:
    """The dataset registered as ``name``; an unknown name suggests close ones."""
    return _REGISTRY.get(name)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    mmap: bool = False,
    path: str | Path | None = None,
    progress: Progress | None = None,
    options: Mapping[str, Any] | None = None,
) -> Dataset:
    """A dataset by name (``nnbench data list`` shows them), with its options."""
    info = get(name)
    if path is not None and not info.takes_path:
        raise DataError(f"dataset {name!r} takes no path")
    request = LoadRequest(data_dir, path, mmap, progress, info.with_defaults(options or {}))
    return info.load(request)


def fetchable() -> list[str]:
    """The datasets ``nnbench data fetch`` can put in the cache."""
    return [name for name, info in available().items() if info.fetch is not None]
