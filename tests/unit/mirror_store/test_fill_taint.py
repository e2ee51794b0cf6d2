"""Fills that fail after sending bytes: the taint record, and ranges held until verification."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Fill, Filler, FillFailed, tail
from mirror_store.metadata import SqliteMetadata

GOOD = b"g" * 700_000
BAD = b"b" * 700_000  # same length, other bytes: what a hostile upstream sends once


class _Gated:
    """An upstream body that stops before its last part until the gate opens."""

    def __init__(self, data: bytes, gate: asyncio.Event) -> None:
        self.data, self.gate = data, gate

    @property
    def size(self) -> int | None:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data[:-10]
        await self.gate.wait()
        yield self.data[-10:]


class _Ledger:
    def __init__(self) -> None:
        self.records: list[tuple[str, int]] = []

    async def record_taint(self, key: str, upto: int) -> None:
        self.records.append((key, upto))


async def _no_commit(_: Digest) -> None:
    return None


def _start(filler: Filler, body: bytes, gate: asyncio.Event, key: str = "k") -> Fill:
    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Gated]:
        yield _Gated(body, gate)

    expected = {"sha256": hashlib.sha256(GOOD).hexdigest()}
    return filler.start(key, open_body, expected, len(body), _no_commit, taint_key="content")


async def _read(reader: AsyncIterator[bytes] | None) -> bytes:
    assert reader is not None
    got = b""
    async for chunk in reader:
        got += chunk
    return got


async def test_failed_fill_taints_before_its_readers_fail(tmp_path: Path) -> None:
    """A reader that sees the failure finds the taint already set, and the ledger records it."""
    ledger = _Ledger()
    filler = Filler(LocalBlobStore(tmp_path), ledger)
    gate = asyncio.Event()
    fill = _start(filler, BAD, gate)
    await fill.wait_started()
    reader = tail(fill)
    assert filler.tainted_upto("content") == 0
    seen: list[int] = []

    async def consume() -> None:
        assert reader is not None
        try:
            async for _ in reader:
                pass
        except FillFailed:
            seen.append(filler.tainted_upto("content"))
            raise

    task = asyncio.ensure_future(consume())
    gate.set()
    with pytest.raises(FillFailed, match="verification failed"):
        await task
    assert seen == [len(BAD)]  # everything written may have reached a client
    await fill.finished.wait()
    for _ in range(20):  # the ledger is written right after the fill is finished
        if ledger.records:
            break
        await asyncio.sleep(0)
    assert ledger.records == [("content", len(BAD))]


async def test_a_verified_fill_taints_nothing(tmp_path: Path) -> None:
    ledger = _Ledger()
    filler = Filler(LocalBlobStore(tmp_path), ledger)
    gate = asyncio.Event()
    gate.set()
    fill = _start(filler, GOOD, gate)
    assert await fill.wait_finished() == hashlib.sha256(GOOD).hexdigest()
    assert filler.tainted_upto("content") == 0
    assert ledger.records == []


async def test_a_bounded_range_waits_for_verification(tmp_path: Path) -> None:
    """A slice far from the end is complete long before the fill: its last byte still waits."""
    filler = Filler(LocalBlobStore(tmp_path))
    gate = asyncio.Event()
    fill = _start(filler, BAD, gate)
    await fill.wait_started()
    async with fill._progress:
        await fill._progress.wait_for(lambda: fill.written >= 600_000)
    got = b""
    reader = tail(fill, 0, 1000)
    assert reader is not None
    all_but_last = asyncio.Event()

    async def consume() -> None:
        nonlocal got
        assert reader is not None
        async for chunk in reader:
            got += chunk
            if len(got) >= 999:
                all_but_last.set()

    task = asyncio.ensure_future(consume())
    await all_but_last.wait()
    assert got == BAD[:999]  # all but the slice's last byte, though 600 KB are written
    assert not task.done()  # still waiting for verification
    gate.set()
    with pytest.raises(FillFailed):
        await task
    assert got == BAD[:999]


async def test_bounded_range_of_a_good_fill_completes(tmp_path: Path) -> None:
    filler = Filler(LocalBlobStore(tmp_path))
    gate = asyncio.Event()
    fill = _start(filler, GOOD, gate)
    await fill.wait_started()
    reader = tail(fill, 5, 1005)
    gate.set()
    assert await _read(reader) == GOOD[5:1005]


async def test_taints_survive_a_restart(tmp_path: Path) -> None:
    """The metadata store keeps the largest offset per content; a new Filler starts from it."""
    meta = SqliteMetadata(tmp_path / "m.sqlite3")
    try:
        await meta.record_taint("hf:abc", 100)
        await meta.record_taint("hf:abc", 50)
        await meta.record_taint("pypi:x/y.whl", 7)
        taints = await meta.taints()
    finally:
        await meta.close()
    assert taints == {"hf:abc": 100, "pypi:x/y.whl": 7}
    filler = Filler(LocalBlobStore(tmp_path), None, taints)
    assert filler.tainted_upto("hf:abc") == 100
    assert filler.tainted_upto("other") == 0
