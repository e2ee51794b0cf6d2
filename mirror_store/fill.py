"""Single-flight fills: one upstream fetch per artifact, written to the store while readers tail it.

A Fill streams an upstream body into a BlobWriter (hashing as it goes).  Any number of readers
attach to the same Fill and read the temp file as it grows, so the first client is served at
upstream speed and later ones join without a second upstream request.  Readers never receive
the last byte of what they asked for (the whole body or a range) before the blob is verified
and published: on a hash or size mismatch, or a cut upstream, every reader's transfer fails
short and nothing becomes visible in the store.  A failure of the store itself (disk full, the
temp file removed, an I/O error) is a ``StorageFailed``, kept apart from the upstream's errors
and from a verification failure, so it is logged as what it is.

A failed fill may still have sent unverified bytes (all but the last) to its readers, and a
client keeps those in its partial download and resumes later with ``Range: bytes=N-``.  So the
Filler remembers, per content (its *taint key*), how far unverified bytes may have reached a
client (``tainted_upto``), persisted through a ``TaintLedger`` so it survives restarts; the
serving layer answers a resume into that prefix with the whole verified body instead of a
tail that would be joined to the unverified head (``proxy.ranges``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

import structlog

from .blobs import BlobStore, BlobWriter, VerificationError
from .digest import Digest

log = structlog.get_logger("airlock.store")
WRITE_BATCH = 256 * 1024
READ_CHUNK = 1024 * 1024
_P = ParamSpec("_P")
_T = TypeVar("_T")


class UpstreamBody(Protocol):
    """An upstream response whose status was already checked."""

    @property
    def size(self) -> int | None:
        """Content-Length if the upstream sent one."""

    def chunks(self) -> AsyncIterator[bytes]: ...


class TaintLedger(Protocol):
    """Durable record of how far unverified bytes of a content may have reached clients."""

    async def record_taint(self, key: str, upto: int) -> None:
        """Remember max(existing, *upto*) for *key*."""


class FillFailed(Exception):
    """The fill did not produce a verified blob; ``reason`` says why."""

    def __init__(self, reason: str, *, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class StorageFailed(FillFailed):
    """The store could not take the bytes (disk full, temp file removed, I/O error): a fault
    of this server's storage, not of the upstream's bytes and not a policy decision."""


@dataclass(eq=False)
class Fill:
    key: str
    expected_size: int | None
    taint_key: str = ""
    size: int | None = None
    written: int = 0
    temp_path: Path | None = None
    digest: Digest | None = None
    error: FillFailed | None = None
    _fd: int | None = None  # read handle on the temp file while the fill runs
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    async def wait_started(self) -> None:
        """Wait until upstream answered (size known) or the fill failed; raise FillFailed."""
        waiter = asyncio.ensure_future(self.started.wait())
        finisher = asyncio.ensure_future(self.finished.wait())
        try:
            await asyncio.wait({waiter, finisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            finisher.cancel()
        if self.error is not None:
            raise self.error

    async def wait_finished(self) -> Digest:
        await self.finished.wait()
        if self.error is not None:
            raise self.error
        assert self.digest is not None
        return self.digest

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()


class Filler:
    """Owns the in-flight fills of one BlobStore."""

    def __init__(
        self,
        blobs: BlobStore,
        ledger: TaintLedger | None = None,
        tainted: dict[str, int] | None = None,
    ) -> None:
        self._blobs = blobs
        self._inflight: dict[str, Fill] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ledger = ledger
        self._tainted: dict[str, int] = dict(tainted or {})  # taint key -> offset
        self.upstream_fetches = 0  # counted for tests and metrics

    def get(self, key: str) -> Fill | None:
        return self._inflight.get(key)

    def tainted_upto(self, taint_key: str) -> int:
        """How far unverified bytes of this content may have reached a client (0: never)."""
        return self._tainted.get(taint_key, 0)

    def _taint(self, fill: Fill) -> None:
        """Before a failure is visible to readers: everything written may have been sent."""
        if fill.written > self._tainted.get(fill.taint_key, 0):
            self._tainted[fill.taint_key] = fill.written

    def start(
        self,
        key: str,
        open_body: Callable[[], AbstractAsyncContextManager[UpstreamBody]],
        expected: dict[str, str],
        expected_size: int | None,
        on_commit: Callable[[Digest], Awaitable[None]],
        on_fail: Callable[[FillFailed], None] | None = None,
        taint_key: str | None = None,
    ) -> Fill:
        """Return the fill for *key*, starting one if none is in flight.

        *on_commit* runs once the blob is published (before readers get the last byte);
        *on_fail* runs once if the fill fails.  *taint_key* names the content as clients ask
        for it (default: *key*), for ``tainted_upto``.
        """
        fill = self._inflight.get(key)
        if fill is not None:
            return fill
        fill = Fill(key, expected_size, taint_key or key)
        self._inflight[key] = fill
        task = asyncio.create_task(self._run(fill, open_body, expected, on_commit, on_fail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill

    async def _run(
        self,
        fill: Fill,
        open_body: Callable[[], AbstractAsyncContextManager[UpstreamBody]],
        expected: dict[str, str],
        on_commit: Callable[[Digest], Awaitable[None]],
        on_fail: Callable[[FillFailed], None] | None,
    ) -> None:
        writer: BlobWriter | None = None
        try:
            self.upstream_fetches += 1
            async with open_body() as body:
                size = body.size if body.size is not None else fill.expected_size
                if (
                    fill.expected_size is not None
                    and body.size is not None
                    and body.size != fill.expected_size
                ):
                    raise FillFailed(
                        f"upstream sent {body.size} bytes, the index promised {fill.expected_size}"
                    )
                writer = await _storing(self._blobs.writer, expected, size)
                fill.size = size
                fill.temp_path = writer.temp_path
                fill._fd = await _storing(os.open, writer.temp_path, os.O_RDONLY)
                fill.started.set()
                buf = bytearray()
                async for chunk in body.chunks():
                    buf += chunk
                    if len(buf) >= WRITE_BATCH:
                        await _storing(writer.write, bytes(buf))
                        fill.written += len(buf)
                        buf.clear()
                        await fill._notify()
                if buf:
                    await _storing(writer.write, bytes(buf))
                    fill.written += len(buf)
            try:
                fill.digest = await _storing(writer.commit)
            except VerificationError as e:
                raise FillFailed(f"verification failed: {e}") from e
            await on_commit(fill.digest)
        except FillFailed as e:
            self._fail(fill, e)
        except Exception as e:  # upstream cut, disk full, ...: nothing becomes visible
            self._fail(fill, FillFailed(_describe(e), cause=e))
        except asyncio.CancelledError:
            self._fail(fill, FillFailed("fill cancelled (server shutting down)"))
            raise
        finally:
            if fill.error is not None and writer is not None:
                await asyncio.to_thread(writer.abort)
            if fill.error is not None and on_fail is not None:
                on_fail(fill.error)
            self._inflight.pop(fill.key, None)
            if fill._fd is not None:  # readers hold their own dup()s
                os.close(fill._fd)
                fill._fd = None
            fill.finished.set()
            await fill._notify()
            if fill.error is not None and fill.written and self._ledger is not None:
                await self._record_taint(fill.taint_key)

    def _fail(self, fill: Fill, error: FillFailed) -> None:
        self._taint(fill)  # first: a reader that sees the error may resume at once
        fill.error = error

    async def _record_taint(self, taint_key: str) -> None:
        assert self._ledger is not None
        try:
            await self._ledger.record_taint(taint_key, self._tainted[taint_key])
        except Exception as e:  # the in-memory record still guards this process
            log.error("taint_not_recorded", key=taint_key, error=str(e) or type(e).__name__)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t


async def _storing(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a store operation in a thread; its OSError becomes StorageFailed.  Kept apart from
    the upstream's errors, which are OSErrors too (connection reset)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OSError as e:
        text = e.strerror or str(e) or type(e).__name__
        where = f" ({e.filename})" if e.filename else ""
        raise StorageFailed(f"storage error: {text}{where}", cause=e) from e


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return f"upstream transfer failed: {text}"


def _limit(fill: Fill, end: int | None) -> int:
    """How far a reader of [.., end) may read now: never its last byte before verification."""
    if fill.done:
        return fill.written if end is None else min(fill.written, end)
    held = fill.written - 1
    return held if end is None else min(held, end - 1)


def _more_than(fill: Fill, pos: int, end: int | None) -> Callable[[], bool]:
    return lambda: fill.done or fill.error is not None or _limit(fill, end) > pos


def tail(fill: Fill, start: int = 0, end: int | None = None) -> AsyncIterator[bytes] | None:
    """Bytes [start, end) of a running fill as they arrive, or None if it already finished.

    Iterating raises FillFailed if the fill fails.  The final byte is held back until the blob
    is verified, so a client never holds a whole body that the store refused.  Call after
    ``fill.wait_started()``; on None the caller serves the published blob instead.
    """
    if fill._fd is None:
        return None
    return _tail(fill, os.dup(fill._fd), start, end)


async def _tail(fill: Fill, fd: int, start: int, end: int | None) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    pos = start
    try:
        while end is None or pos < end:
            if fill.error is not None:
                raise fill.error
            limit = _limit(fill, end)
            if pos >= limit:
                if fill.done:
                    break
                async with fill._progress:
                    await fill._progress.wait_for(_more_than(fill, pos, end))
                continue
            n = min(READ_CHUNK, limit - pos)
            data = await loop.run_in_executor(None, os.pread, fd, n, pos)
            if not data:
                raise FillFailed("temporary file shorter than recorded")
            pos += len(data)
            yield data
        if fill.error is not None:
            raise fill.error
    finally:
        os.close(fd)
