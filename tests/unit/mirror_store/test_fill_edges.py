"""Fill edges the client tests reach only by chance: reasons, one-byte taints, shutdown."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Filler, FillFailed


class _Body:
    """Yields *parts*, waits for *gate* before the last one, then raises *error* (if any)."""

    def __init__(
        self,
        parts: list[bytes],
        gate: asyncio.Event,
        error: BaseException | None = None,
        size: int | None = None,
    ) -> None:
        self.parts, self.gate, self.error, self._size = parts, gate, error, size

    @property
    def size(self) -> int | None:
        return self._size

    async def chunks(self) -> AsyncIterator[bytes]:
        for p in self.parts[:-1]:
            yield p
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        yield self.parts[-1]


async def _no_commit(_: Digest) -> None:
    return None


def _start(
    filler: Filler, body: _Body, expected_size: int | None, data: bytes
) -> asyncio.Task[Digest]:
    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        yield body

    fill = filler.start(
        "k",
        open_body,
        {"sha256": hashlib.sha256(data).hexdigest()},
        expected_size,
        _no_commit,
        taint_key="content",
    )
    return asyncio.create_task(fill.wait_finished())


async def test_a_cut_without_a_message_is_named_by_its_type(tmp_path: Path) -> None:
    """An upstream cut whose exception has no text still says what happened."""
    gate = asyncio.Event()
    gate.set()
    filler = Filler(LocalBlobStore(tmp_path))
    done = _start(filler, _Body([b"a", b"b"], gate, ConnectionResetError()), None, b"ab")
    with pytest.raises(FillFailed) as e:
        await done
    assert e.value.reason == "upstream transfer failed: ConnectionResetError"
    assert isinstance(e.value.cause, ConnectionResetError)


async def test_one_refused_byte_is_a_taint(tmp_path: Path) -> None:
    """Even a single unverified byte may have reached a client: the taint says 1, not 0."""
    gate = asyncio.Event()
    gate.set()
    filler = Filler(LocalBlobStore(tmp_path))
    done = _start(filler, _Body([b"x"], gate, size=1), 1, b"y")  # one byte, the wrong one
    with pytest.raises(FillFailed, match="verification failed"):
        await done
    assert filler.tainted_upto("content") == 1


async def test_a_size_other_than_promised_is_refused_before_any_byte(tmp_path: Path) -> None:
    """Content-Length differing from the index's size: refused before a reader is started."""
    gate = asyncio.Event()
    gate.set()
    filler = Filler(LocalBlobStore(tmp_path))
    done = _start(filler, _Body([b"ab"], gate, size=2), 3, b"abc")
    with pytest.raises(FillFailed, match="upstream sent 2 bytes, the index promised 3"):
        await done
    assert filler.tainted_upto("content") == 0
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_aclose_cancels_a_running_fill_and_returns(tmp_path: Path) -> None:
    """Server shutdown: the in-flight fill fails as cancelled, nothing is published."""
    gate = asyncio.Event()  # never opened: the upstream stalls
    store = LocalBlobStore(tmp_path)
    filler = Filler(store)
    done = _start(filler, _Body([b"a" * 10, b"b"], gate, size=11), 11, b"a" * 10 + b"b")
    fill = filler.get("k")
    assert fill is not None
    await fill.wait_started()
    await filler.aclose()
    with pytest.raises(FillFailed, match="fill cancelled"):
        await done
    assert filler.get("k") is None
    assert list(store.digests()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


class _BrokenLedger:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def record_taint(self, key: str, upto: int) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"), [(OSError("disk full"), "disk full"), (OSError(), "OSError")]
)
async def test_a_taint_the_ledger_cannot_keep_is_logged(
    tmp_path: Path, error: Exception, said: str
) -> None:
    """The in-memory taint still guards this process; the operator learns it is not durable."""
    gate = asyncio.Event()
    gate.set()
    filler = Filler(LocalBlobStore(tmp_path), _BrokenLedger(error))
    with capture_logs() as logs:
        done = _start(filler, _Body([b"x"], gate, size=1), 1, b"y")
        with pytest.raises(FillFailed):
            await done
        await asyncio.gather(*filler._tasks)  # the ledger is written after the fill finished
    assert filler.tainted_upto("content") == 1
    assert logs == [
        {"event": "taint_not_recorded", "key": "content", "error": said, "log_level": "error"}
    ]
