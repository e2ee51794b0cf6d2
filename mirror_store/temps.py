"""In-progress temp files (``tmp/blob-*.part``) and how to tell a live one from crash debris.

A writer holds an exclusive ``flock`` on its temp file from the moment it exists until the
file is renamed into the blob tree or removed.  The kernel drops the lock when the process
dies (``kill -9`` included), so *abandoned* means exactly "no live process holds its lock";
nothing has to be cleaned up after a crash for that to hold.

``flock``, not ``lockf``/``fcntl`` record locks: those belong to the process and are released
when *any* descriptor of the file is closed, and the fill's readers open and close their own
descriptors of the temp file all the time.

The protocol has no race between a writer and a cleaner (``gc``, the server's start-up
cleanup, a second process):

* the writer creates the file, then takes the lock without waiting; if it cannot, a cleaner
  got there first and may be removing it, so the writer drops that name and creates another;
* a cleaner takes the lock without waiting; if it cannot, a live writer has the file and it is
  left alone.  Holding the lock, it removes the file only if the name still refers to the
  file it locked (a writer renames its file away while still holding the lock).

``min_age`` is a second guard on top (a file modified within it is kept even when unlocked),
for people and tools that do not speak the protocol.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PREFIX = "blob-"
SUFFIX = ".part"
CREATE_ATTEMPTS = 100


def create_locked(directory: Path) -> tuple[int, Path]:
    """A new temp file in *directory*, opened for writing and locked by this process."""
    for _ in range(CREATE_ATTEMPTS):
        fd, name = tempfile.mkstemp(dir=directory, prefix=PREFIX, suffix=SUFFIX)
        if _try_lock(fd):
            return fd, Path(name)
        os.close(fd)  # a cleaner holds it and will remove it; so may we
        with contextlib.suppress(OSError):
            os.unlink(name)
    raise OSError(f"could not create a locked temp file in {directory}")


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass(frozen=True)
class TempFile:
    path: Path
    size: int
    mtime: float
    live: bool  # a live process holds its lock: a download in progress


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[tuple[int, os.stat_result] | None]:
    """Hold *path*'s lock while the block runs: (fd, its stat), or None if a writer holds it
    or the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        yield None
        return
    try:
        yield (fd, os.fstat(fd)) if _try_lock(fd) else None
    finally:
        os.close(fd)  # releases the lock


def _same_file(path: Path, st: os.stat_result) -> bool:
    try:
        now = path.lstat()
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def scan(directory: Path) -> list[TempFile]:
    """Every temp file in *directory*, oldest first, each marked live or abandoned."""
    found: list[TempFile] = []
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            st = path.lstat()
        except OSError:
            continue  # finished meanwhile
        with _locked(path) as held:
            live = held is None or not _same_file(path, held[1])
        if live and not path.exists():
            continue  # it was committed or aborted while we looked
        found.append(TempFile(path, st.st_size, st.st_mtime, live))
    return sorted(found, key=lambda t: (t.mtime, t.path.name))


def is_old(temp: TempFile, min_age: float, now: float | None = None) -> bool:
    return temp.mtime <= (time.time() if now is None else now) - min_age


def remove_abandoned(directory: Path, min_age: float) -> list[TempFile]:
    """Remove temp files no live process holds and not modified within *min_age* seconds;
    return what was removed."""
    removed: list[TempFile] = []
    cutoff = time.time() - min_age
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        with _locked(path) as held:
            if held is None:
                continue  # a live writer
            _fd, st = held
            if st.st_mtime > cutoff or not _same_file(path, st):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(TempFile(path, st.st_size, st.st_mtime, live=False))
    return removed
