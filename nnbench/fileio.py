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
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from nnbench.errors import NnbenchError

TEMP_SUFFIX = ".tmp"
# what temp_path makes: ".NAME.PID.8HEX.tmp"; nothing else is ever removed
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$", re.DOTALL)


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


def temporaries(folder: str | os.PathLike) -> list[Path]:
    """The temporary files a killed writer left in ``folder``.

    Only names :func:`temp_path` makes (``.NAME.PID.HEX.tmp``) that are regular
    files, and whose writer (the PID in the name) is gone: a hidden
    ``.notes.tmp`` of the user's is not nnbench's, and the temporary file of a
    writer still at work (a report building in a folder a run starts in) is
    that writer's.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for tmp in sorted(folder.glob(f".*{TEMP_SUFFIX}")):
        match = _TEMP_NAME.match(tmp.name)
        if match and tmp.is_file() and not tmp.is_symlink() and not _alive(int(match[1])):
            found.append(tmp)
    return found


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Delete the temporary files a killed writer left in ``folder`` (:func:`temporaries`);
    return how many."""
    removed = 0
    for tmp in temporaries(folder):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one of another user's counts: it is not ours to judge)."""
    if pid <= 0:
        return True  # no process of ours: never a reason to delete
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def is_regular_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file (links followed): never a FIFO, whose
    reader would wait forever for a writer, a device or a folder."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def open_lock_file(path: Path) -> BinaryIO:
    """``path`` opened for a lock: created when absent, never through a link,
    and only when it is a regular file."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError:
        if os.path.islink(path):
            raise NnbenchError(
                f"{path} is a link; nnbench only writes regular files: remove it"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NnbenchError(
            f"{path} is not a regular file; nnbench only writes regular files: remove it"
        )
    return os.fdopen(fd, "r+b")


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
