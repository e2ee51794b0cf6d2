"""A fill that fails in the store (disk full, temp deleted) is a StorageFailed, not a bad body."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from mirror_store.blobs import BlobWriter, LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Filler, FillFailed, StorageFailed

DATA = b"d" * 600_000


class _Body:
    def __init__(self, gate: asyncio.Event | None = None, error: Exception | None = None) -> None:
        self.gate, self.error = gate, error

    @property
    def size(self) -> int | None:
        return len(DATA)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield DATA[:300_000]
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        yield DATA[300_000:]


class _FullDisk(LocalBlobStore):
    def writer(self, expected: dict[str, str], expected_size: int | None = None) -> BlobWriter:
        w = super().writer(expected, expected_size)

        def write(chunk: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(w.temp_path))

        w.write = write  # type: ignore[method-assign]
        return w


async def _fail(filler: Filler, body: _Body) -> FillFailed:
    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        yield body

    async def on_commit(_: Digest) -> None:
        return None

    failures: list[FillFailed] = []
    fill = filler.start(
        "k",
        open_body,
        {"sha256": hashlib.sha256(DATA).hexdigest()},
        len(DATA),
        on_commit,
        failures.append,
    )
    with pytest.raises(FillFailed) as e:
        await fill.wait_finished()
    assert failures == [e.value]
    return e.value


async def test_a_full_disk_is_a_storage_failure(tmp_path: Path) -> None:
    e = await _fail(Filler(_FullDisk(tmp_path)), _Body())
    assert isinstance(e, StorageFailed)
    assert isinstance(e.cause, OSError)
    assert e.cause.errno == errno.ENOSPC
    assert e.reason.startswith("storage error: No space left on device")
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_temp_deleted_under_a_fill_is_a_storage_failure(tmp_path: Path) -> None:
    """What an old ``gc`` did to a download in flight: the publish finds its file gone."""
    filler = Filler(LocalBlobStore(tmp_path))
    gate = asyncio.Event()
    body = _Body(gate)

    async def delete_then_release() -> None:
        [temp] = (tmp_path / "tmp").iterdir()
        temp.unlink()
        gate.set()

    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        yield body

    async def on_commit(_: Digest) -> None:
        return None

    fill = filler.start(
        "k", open_body, {"sha256": hashlib.sha256(DATA).hexdigest()}, len(DATA), on_commit
    )
    await fill.wait_started()
    await delete_then_release()
    with pytest.raises(StorageFailed, match="temp file deleted while it was written"):
        await fill.wait_finished()
    assert list(LocalBlobStore(tmp_path).digests()) == []


async def test_an_upstream_connection_error_is_not_a_storage_failure(tmp_path: Path) -> None:
    """Connection resets are OSErrors too: only the store's own errors are storage errors."""
    e = await _fail(Filler(LocalBlobStore(tmp_path)), _Body(error=ConnectionResetError(104, "x")))
    assert not isinstance(e, StorageFailed)
    assert e.reason.startswith("upstream transfer failed")
