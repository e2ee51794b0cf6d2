"""Blob store and fills: verify before visible, write-once, single flight, hold the last byte."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mirror_store.blobs import LocalBlobStore, VerificationError
from mirror_store.digest import GIT_BLOB_SHA1, Digest
from mirror_store.fill import Filler, FillFailed, tail


def test_commit_verifies_and_publishes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = b"hello world"
    w = store.writer({"sha256": hashlib.sha256(data).hexdigest()}, len(data))
    w.write(data)
    digest = w.commit()
    path = store.path(digest)
    assert path is not None
    assert path.read_bytes() == data
    assert path.parent.parent.name == digest[:2]
    assert list(store.digests()) == [digest]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    w = store.writer({"sha256": "0" * 64})
    w.write(b"data")
    with pytest.raises(VerificationError, match="sha256 expected"):
        w.commit()
    assert list(store.digests()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_size_and_git_blob_hash(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = b'{"a": 1}\n'
    blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    w = store.writer({GIT_BLOB_SHA1: blob_id}, len(data))
    w.write(data)
    assert store.path(w.commit()) is not None
    w = store.writer({}, 100)
    w.write(data)
    with pytest.raises(VerificationError, match="size expected 100"):
        w.commit()


class _Body:
    def __init__(self, parts: list[bytes], gate: asyncio.Event, fail: bool = False) -> None:
        self.parts, self.gate, self.fail = parts, gate, fail

    @property
    def size(self) -> int | None:
        return sum(map(len, self.parts))

    async def chunks(self) -> AsyncIterator[bytes]:
        for i, p in enumerate(self.parts):
            if i == len(self.parts) - 1:
                await self.gate.wait()
                if self.fail:
                    raise ConnectionResetError("cut")
            yield p


async def test_fill_single_flight_and_last_byte_held(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    filler = Filler(store)
    parts = [b"a" * 300_000, b"b" * 10]
    data = b"".join(parts)
    gate = asyncio.Event()
    opened = 0

    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        nonlocal opened
        opened += 1
        yield _Body(parts, gate)

    committed: list[Digest] = []

    async def on_commit(d: Digest) -> None:
        committed.append(d)

    expected = {"sha256": hashlib.sha256(data).hexdigest()}
    fills = [filler.start("k", open_body, expected, len(data), on_commit) for _ in range(5)]
    assert all(f is fills[0] for f in fills)
    fill = fills[0]
    await fill.wait_started()
    reader = tail(fill)
    assert reader is not None
    got = b""
    async for chunk in reader:
        got += chunk
        if len(got) >= 300_000 - 1 and not gate.is_set():
            assert len(got) < len(data)  # never the whole body before verification
            gate.set()
    assert got == data
    assert await fill.wait_finished() == expected["sha256"]
    assert opened == 1
    assert committed == [expected["sha256"]]
    assert tail(fill) is None  # finished: callers serve the blob


async def test_fill_failure_fails_readers_and_stores_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    filler = Filler(store)
    gate = asyncio.Event()
    parts = [b"x" * 300_000, b"y"]

    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        yield _Body(parts, gate, fail=True)

    async def on_commit(d: Digest) -> None:
        raise AssertionError("must not commit")

    failures: list[FillFailed] = []
    fill = filler.start("k", open_body, {"sha256": "0" * 64}, None, on_commit, failures.append)
    await fill.wait_started()
    reader = tail(fill)
    assert reader is not None
    gate.set()
    with pytest.raises(FillFailed, match="cut"):
        async for _ in reader:
            pass
    await fill.finished.wait()
    assert len(failures) == 1
    assert list(store.digests()) == []
    assert list((tmp_path / "tmp").iterdir()) == []
