"""Every file nnbench writes goes through one helper: what it refuses, what it leaves."""

import os
import stat

import pytest

from nnbench.errors import NnbenchError
from nnbench.fileio import (
    atomic_write,
    open_lock_file,
    read_limited,
    remove_temporaries,
    temp_path,
)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_and_replaces_a_regular_file(tmp_path):
    path = atomic_write(tmp_path / "a.txt", "one")
    assert path.read_text() == "one"
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    atomic_write(path, lambda fh: fh.write(b"three"))
    assert path.read_bytes() == b"three" and leftovers(tmp_path) == []


def test_refuses_a_folder_and_leaves_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(NnbenchError, match="is a folder; nnbench only writes regular files"):
        atomic_write(tmp_path / "d", "x")
    assert leftovers(tmp_path) == [] and list((tmp_path / "d").iterdir()) == []


def test_refuses_a_link_and_never_follows_it(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("mine")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(NnbenchError, match="is a link"):
        atomic_write(tmp_path / "link", "x")
    assert target.read_text() == "mine" and (tmp_path / "link").is_symlink()


def test_refuses_a_special_file(tmp_path):
    # a named pipe of the test's own stands for a device: were the helper to
    # replace it, no system file would be harmed
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NnbenchError, match="not a regular file"):
        atomic_write(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path, fault):
    path = atomic_write(tmp_path / "a.txt", "old")

    def half(fh):
        fh.write(b"half")
        raise fault

    with pytest.raises(type(fault)):
        atomic_write(path, half)
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def dead_pid() -> int:
    """The id of a process that has ended."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_a_killed_writer_are_cleared(tmp_path):
    (tmp_path / f".a.txt.{dead_pid()}.0123abcd.tmp").write_text("half")  # a writer's name
    (tmp_path / "notes.tmp").write_text("a user's file, not hidden")
    (tmp_path / ".notes.tmp").write_text("a user's hidden file: not a writer's name")
    (tmp_path / ".a.txt.123.abcdef12.tmp").mkdir()  # not a file: left alone
    assert remove_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".a.txt.123.abcdef12.tmp",
        ".notes.tmp",
        "notes.tmp",
    ]


def test_a_lock_file_is_never_a_link_or_a_special_file(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's")
    (tmp_path / "link").symlink_to(precious)
    with pytest.raises(NnbenchError, match="is a link"):
        open_lock_file(tmp_path / "link")
    assert precious.read_text() == "the user's"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NnbenchError, match="not a regular file"):
        open_lock_file(tmp_path / "fifo")  # opened without blocking, then refused
    with open_lock_file(tmp_path / "new") as fh:
        fh.write(b"123")
    assert (tmp_path / "new").read_bytes() == b"123"


def test_bounded_reads_refuse_a_bomb(tmp_path):
    import gzip
    import io

    bomb = gzip.compress(b"\0" * (5 << 20))  # 5 MB of zeros in 5 KB
    with gzip.open(io.BytesIO(bomb)) as fh, pytest.raises(NnbenchError, match="more than"):
        read_limited(fh, 1 << 20, "bomb.gz")
    with gzip.open(io.BytesIO(bomb)) as fh:
        assert len(read_limited(fh, 6 << 20, "ok.gz")) == 5 << 20


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    """A report writing into a results folder while a run starts there: the
    temporary file of a writer still running is its own, not a leftover."""
    live = temp_path(tmp_path / "report.html")  # this process: alive
    live.write_text("half a report")
    dead = tmp_path / f".report.md.{dead_pid()}.0123abcd.tmp"
    dead.write_text("left by a killed writer")
    assert remove_temporaries(tmp_path) == 1
    assert live.exists() and not dead.exists()
