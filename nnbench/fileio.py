"""Every file nnbench writes goes through :func:`atomic_write`; every bounded read
through :func:`read_limited`.

A write goes to a temporary file in the target's folder, reaches the disk,
and is renamed over the target, so a crash or a full disk never leaves a half
file under the real name. The target must be a regular file or absent: a
link, a folder or a device is refused, never followed into or replaced. The
temporary file is removed on every failure path, Ctrl-C included.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from nnbench.errors import NnbenchError

TEMP_SUFFIX = ".tmp"


def check_writable_target(path: str | os.PathLike) -> Path:
    """``path`` if it is absent or a regular file; a clear error otherwise."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise NnbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(mode)
            else "a link"
            if stat.S_ISLNK(mode)
            else "not a regular file"
        )
        raise NnbenchError(
            f"{path} is {kind}; nnbench only writes regular files: give another path"
        )
    return path


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: hidden, ending in ``.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def atomic_write(
    path: str | os.PathLike, content: bytes | str | Callable[[BinaryIO], object]
) -> Path:
    """Write ``content`` (bytes, text, or a function of an open binary file) to ``path``.

    Raises NnbenchError when ``path`` exists and is not a regular file, and
    OSError when the disk refuses; in both cases nothing is left behind.
    """
    path = check_writable_target(path)
    if isinstance(content, str):
        content = content.encode("utf-8")
    tmp = temp_path(path)
    try:
        # O_EXCL: never open something that appeared under the temporary name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, bytes):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the data reach the disk before the name does
        check_writable_target(path)  # it may have changed while we wrote
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files a killed writer left in ``folder``; return how many.

    Only names :func:`temp_path` makes (hidden, ``.tmp``) that are regular files.
    """
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def read_limited(fh: BinaryIO, limit: int, what: str) -> bytes:
    """Read ``fh`` to its end, refusing more than ``limit`` bytes (a decompression bomb)."""
    chunks = []
    size = 0
    while chunk := fh.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise NnbenchError(
                f"{what} holds more than {limit:,} bytes once decompressed; "
                "it is not the file it claims to be"
            )
        chunks.append(chunk)
    return b"".join(chunks)
