"""The store lock: one ``airlock serve`` per store, checked before the store is touched.

``serve`` holds an exclusive ``flock`` on ``<store>/.lock`` for as long as it runs and writes
its pid there.  A second ``serve`` on the same store cannot take the lock and refuses to start
before it cleans or opens anything.  The kernel releases the lock when the process dies, so a
crashed server never leaves a stale lock behind.  The maintenance commands (``store fsck``,
``store gc``, ``check``) do not take it: they work alongside a running server and leave the
temp files of live downloads alone (``mirror_store.temps``).

This is the only place that makes the store exclusive.  Several servers sharing one store
would take the lock shared (``LOCK_SH``) here instead; everything else already copes with
concurrent writers (per-file temp locks, atomic renames, SQLite).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = ".lock"


class StoreInUse(Exception):
    """Another process holds the store."""

    def __init__(self, root: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"the store at {root} is in use by another airlock serve ({holder})")
        self.root = root
        self.pid = pid


class StoreLock:
    """An exclusive hold on a store; ``release`` (or process exit) gives it up."""

    def __init__(self, root: Path, fd: int) -> None:
        self.root = root
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None


def lock_store(root: Path) -> StoreLock:
    """Hold *root* exclusively, or raise StoreInUse naming the holder's pid.

    Creates only the store directory and its lock file; writes nothing else.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise StoreInUse(root, pid) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return StoreLock(root, fd)
