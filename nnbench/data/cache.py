"""The data cache: where it is, and folders in it that nnbench manages by manifest.

A managed folder holds the files nnbench wrote and a ``manifest.json`` listing
them with their sizes and SHA-256 sums. nnbench writes and deletes only the
files its manifest lists: anything else a user puts in the folder stays.
Reading checks every listed file against its sum, so a damaged cache is
found, never silently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from nnbench.errors import DataError, NnbenchError
from nnbench.fileio import atomic_write, remove_temporaries, temporaries

CACHE_ENV = "NNBENCH_DATA_DIR"
MANIFEST = "manifest.json"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The data cache: ``path`` (``--data-dir``), else ``$NNBENCH_DATA_DIR``, else
    the user's cache folder (``~/.cache/nnbench`` on Linux)."""
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


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _plain_name(name: object) -> bool:
    # a manifest names files in its own folder only: never a path elsewhere
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and (os.sep not in name)
    )


class ManagedFolder:
    """A cache folder whose files are known from its manifest."""

    # what a damaged folder's error tells the user to run; MNIST's unless its owner says
    DEFAULT_FIX = "run `nnbench data fetch mnist --force` to rebuild it"

    def __init__(self, folder: str | os.PathLike, fix: str = DEFAULT_FIX) -> None:
        self.folder = Path(folder)
        self.fix = fix

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when the folder holds none (nothing written yet)."""
        try:
            raw = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.damaged(f"unreadable manifest: {exc}") from None
        files = raw.get("files") if isinstance(raw, dict) else None
        if not isinstance(files, dict) or not all(
            _plain_name(n) and isinstance(m, dict) for n, m in files.items()
        ):
            raise self.damaged("malformed manifest")
        return raw

    def damaged(self, why: str) -> DataError:
        return DataError(f"the cache in {self.folder} is damaged ({why}); {self.fix}")

    def write(
        self, files: Mapping[str, Callable[[BinaryIO], object]], extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write ``files`` (name -> writer of an open binary file), then the manifest.

        Files the old manifest listed and the new set lacks are deleted; no
        other file of the folder is touched. The manifest is written last, so
        a crash in between leaves the folder looking unfinished, never complete.
        """
        try:
            old = self.manifest()
        except DataError:
            old = None  # being rebuilt: its list of files is lost, so nothing is deleted
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.clean()
            self.manifest_path.unlink(missing_ok=True)
            listed: dict[str, Any] = {}
            for name, writer in files.items():
                path = atomic_write(self.folder / name, writer)
                listed[name] = {"bytes": path.stat().st_size, "sha256": file_digest(path)}
            if old:
                for name in set(old["files"]) - set(listed):
                    (self.folder / name).unlink(missing_ok=True)
            manifest = {**extra, "files": listed}
            atomic_write(self.manifest_path, json.dumps(manifest, indent=2))
        except OSError as exc:
            raise NnbenchError(
                f"cannot write the data cache in {self.folder}: {exc.strerror or exc}; "
                "free some space or choose another folder with --data-dir"
            ) from None
        return manifest

    def clean(self) -> int:
        """Remove what a killed writer left here (its temporary files, once their
        writer is gone): a dataset's worth of disk each, lost for good otherwise."""
        try:
            return remove_temporaries(self.folder)
        except OSError:
            return 0  # a read-only cache: the leftovers are listed by `data info`

    def verify(self, manifest: Mapping[str, Any]) -> None:
        """Every listed file present with its size and SHA-256 sum, or DataError."""
        why = self.mismatch(manifest)
        if why is not None:
            raise self.damaged(why)

    def mismatch(self, manifest: Mapping[str, Any]) -> str | None:
        """Which listed file is missing or differs from its size and SHA-256 sum
        (None: every one matches)."""
        for name, meta in manifest["files"].items():
            path = self.folder / name
            try:
                size = path.stat().st_size
                if size != meta.get("bytes") or file_digest(path) != meta.get("sha256"):
                    return f"{name} does not match its checksum"
            except OSError:
                return f"{name} is missing"
        return None

    def files(self) -> list[Path]:
        """The files the manifest lists (and the manifest itself)."""
        manifest = self.manifest()
        if manifest is None:
            return []
        return [self.folder / n for n in manifest["files"]] + [self.manifest_path]


def file_entry(root: Path, path: Path, sha256: str | None) -> dict:
    """A cached file as ``nnbench data info`` lists it."""
    return {"path": str(path.relative_to(root)), "bytes": path.stat().st_size, "sha256": sha256}


def managed_entries(root: Path, folder: Path, derived: bool) -> list[dict]:
    """A managed folder's files as ``nnbench data info`` lists them."""
    try:
        manifest = ManagedFolder(folder).manifest()
    except DataError:
        return [{"path": str(folder.relative_to(root)), "damaged": True}]
    out = []
    for name, meta in (manifest or {"files": {}})["files"].items():
        path = folder / name
        if path.is_file():
            entry = file_entry(root, path, meta.get("sha256"))
            entry["derived"] = derived
            out.append(entry)
    for path in temporaries(folder):  # a killed writer's: the next run removes them
        with contextlib.suppress(OSError):
            out.append({**file_entry(root, path, None), "temporary": True})
    return out
