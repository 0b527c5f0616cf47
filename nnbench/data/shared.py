"""A dataset shared with parallel workers: ``.npy`` files in the run's dtype, memory-mapped.

The operating system keeps one copy of the pages however many workers map
them, so a grid on MNIST does not hold the training set once per job. The
files live in a managed folder of the cache (``shared/<content>-<dtype>``),
written once and checked against their sums each time a grid starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnbench.data.cache import ManagedFolder, cache_dir, managed_entries
from nnbench.data.registry import LoadRequest, Progress, Split, available, get
from nnbench.errors import DataError


@dataclass(frozen=True)
class SharedData:
    """Where a worker finds a dataset's splits, and what it needs to know of it."""

    name: str
    n_classes: int
    n_features: int
    folder: str
    splits: tuple[str, ...]

    def load(self) -> dict[str, Split]:
        """The splits, memory-mapped read-only."""
        folder = Path(self.folder)
        try:
            return {
                s: (
                    np.load(folder / f"{s}_X.npy", mmap_mode="r", allow_pickle=False),
                    np.load(folder / f"{s}_y.npy", mmap_mode="r", allow_pickle=False),
                )
                for s in self.splits
            }
        except (OSError, ValueError) as exc:
            raise DataError(
                f"shared data in {folder} is unreadable ({exc}); run the grid again to rebuild it"
            ) from None


def share_dataset(
    dataset: str,
    dtype: str,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    options: Mapping[str, Any] | None = None,
) -> SharedData:
    """Write (once) the dataset's splits in ``dtype`` to the cache, for memory-mapping
    (or hand out the folder the dataset already prepared in that dtype)."""
    info = get(dataset)
    request = LoadRequest(data_dir, path, True, progress, info.with_defaults(options or {}))
    ds = info.load(request)
    splits = {"train": ds.train, "valid": ds.valid}
    if ds.test is not None:
        splits["test"] = ds.test
    ready = info.prepared(request, dtype) if info.prepared is not None else None
    if ready is not None:
        return SharedData(ds.name, ds.n_classes, ds.n_features, str(ready), tuple(splits))
    root = cache_dir(data_dir)
    folder = ManagedFolder(root / "shared" / f"{info.content_id(request)}-{np.dtype(dtype).name}")
    folder.clean()
    try:
        manifest = folder.manifest()
        if manifest is not None:
            folder.verify(manifest)
    except DataError:
        manifest = None  # damaged: written again below
    if manifest is None or set(manifest["files"]) != {f"{s}_{p}.npy" for s in splits for p in "Xy"}:
        files = {}
        for name, (X, y) in splits.items():
            files[f"{name}_X.npy"] = _writer(np.ascontiguousarray(X, dtype=dtype))
            files[f"{name}_y.npy"] = _writer(np.ascontiguousarray(y, dtype=np.int64))
        folder.write(files, {"dataset": dataset, "dtype": np.dtype(dtype).name})
    return SharedData(ds.name, ds.n_classes, ds.n_features, str(folder.folder), tuple(splits))


def changed(shared: SharedData) -> str | None:
    """Why the files of ``shared`` no longer match the sums they were written with
    (one overwritten in place while runs mapped it, say); None when they match or
    no manifest lists them (a dataset's own prepared folder)."""
    folder = ManagedFolder(shared.folder)
    try:
        manifest = folder.manifest()
    except DataError:
        return "its manifest is unreadable"
    return None if manifest is None else folder.mismatch(manifest)


def cache_info(data_dir: str | os.PathLike | None = None) -> dict:
    """What the cache holds, where, with checksums: every dataset's own files, and
    the shared copies runs map. Only the files nnbench manages are listed:
    nothing else under the folder is read, however large it is."""
    root = cache_dir(data_dir)
    files: list[dict] = []
    for info in available().values():
        if info.cached is not None:
            files += info.cached(data_dir)
    shared = root / "shared"
    if shared.is_dir():
        for folder in sorted(p for p in shared.iterdir() if p.is_dir() and not p.is_symlink()):
            files += managed_entries(root, folder, derived=True)
    return {"cache_dir": str(root), "files": files}


def _writer(arr: np.ndarray):
    return lambda fh: np.save(fh, arr, allow_pickle=False)
