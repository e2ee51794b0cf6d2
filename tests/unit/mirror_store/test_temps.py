"""Temp files locked by their writer: live ones are never cleaned, crash leftovers are found."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mirror_store import temps
from mirror_store.blobs import LocalBlobStore
from mirror_store.storelock import LOCK_NAME, StoreInUse, lock_store

REPO = Path(__file__).resolve().parents[3]

# A child that starts a blob, writes to it, says where, and waits to be killed.
WRITER = """
import sys
from pathlib import Path
from mirror_store.blobs import LocalBlobStore
w = LocalBlobStore(Path(sys.argv[1])).writer({})
w.write(b"x" * int(sys.argv[2]))
w.fh.flush()
print(w.temp_path, flush=True)
sys.stdin.read()
"""

HOLDER = """
import sys
from pathlib import Path
from mirror_store.storelock import lock_store
lock = lock_store(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def _child(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()  # waits for the child to be ready


def _kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        assert pipe is not None
        pipe.close()
    assert proc.returncode == -signal.SIGKILL


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_live_writers_temp_is_never_cleaned_and_still_commits(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    w = store.writer({})
    w.write(b"partial")
    _age(w.temp_path, 7200)  # old, but its writer is alive
    [temp] = store.temp_files()
    assert temp.live
    assert store.clean_tmp(min_age=0) == []
    assert w.temp_path.exists()
    digest = w.commit()
    assert store.path(digest) is not None
    assert store.temp_files() == []


def test_a_crashed_writers_temp_is_abandoned_and_removed(tmp_path: Path) -> None:
    proc, name = _child(WRITER, str(tmp_path), "70000")
    store = LocalBlobStore(tmp_path)
    try:
        assert [t.live for t in store.temp_files()] == [True]
        assert store.clean_tmp(min_age=0) == []
    finally:
        _kill9(proc)  # the kernel drops its lock; nothing else happens
    [temp] = store.temp_files()
    assert (temp.path, temp.size, temp.live) == (Path(name), 70000, False)
    assert store.clean_tmp(min_age=3600) == []  # younger than min-age: kept
    assert Path(name).exists()
    [removed] = store.clean_tmp(min_age=0)
    assert (removed.path, removed.size) == (Path(name), 70000)
    assert not Path(name).exists()


def test_min_age_keeps_young_abandoned_temps(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    old = tmp_path / "tmp" / "blob-old.part"
    young = tmp_path / "tmp" / "blob-young.part"
    old.write_bytes(b"o" * 10)
    young.write_bytes(b"y" * 20)
    _age(old, 7200)
    assert [(t.path.name, t.live) for t in store.temp_files()] == [
        ("blob-old.part", False),
        ("blob-young.part", False),
    ]
    assert [t.path for t in store.clean_tmp(min_age=3600)] == [old]
    assert young.exists()


def test_a_writer_gives_up_a_name_a_cleaner_has_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cleaner locked the new file before its writer could: the writer takes another."""
    (tmp_path / "tmp").mkdir()
    real = tempfile.mkstemp
    taken: list[tuple[int, str]] = []

    def mkstemp(**kw: str) -> tuple[int, str]:
        fd, name = real(**kw)  # type: ignore[call-overload]
        if not taken:
            cleaner = os.open(name, os.O_RDONLY)
            fcntl.flock(cleaner, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken.append((cleaner, name))
        return int(fd), str(name)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)  # as mirror_store.temps calls it
    fd, path = temps.create_locked(tmp_path / "tmp")
    cleaner, first = taken[0]
    try:
        assert path != Path(first)
        assert not Path(first).exists()  # dropped by the writer
        probe = os.open(path, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # the writer holds its new file
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(probe)
    finally:
        os.close(fd)
        os.close(cleaner)


def test_the_store_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    lock = lock_store(root)
    assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]
    with pytest.raises(StoreInUse) as e:
        lock_store(root)
    assert e.value.pid == os.getpid()
    assert str(e.value) == (
        f"the store at {root} is in use by another airlock serve (pid {os.getpid()})"
    )
    lock.release()
    with lock_store(root):
        pass


def test_a_crashed_servers_store_lock_is_free_again(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc, line = _child(HOLDER, str(root))
    assert line == "locked"
    try:
        with pytest.raises(StoreInUse) as e:
            lock_store(root)
        assert e.value.pid == proc.pid
    finally:
        _kill9(proc)
    lock_store(root).release()
