"""Artifact responses (proxy/serving.py) through a real aiohttp server and a real HTTP client.

The handlers call ``send_blob``/``send_fill`` exactly as the ecosystem routes do; what is
checked is what a client sees (status, headers, bytes, a cut transfer) and what is counted.
These are the fast tests of issue #18's mutation runs: the pip/uv/hub integration tests reach
the same code, but each mutant would cost them a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Fill, Filler, FillFailed
from proxy.appkeys import METRICS
from proxy.errors import BadRequest, error_middleware
from proxy.metrics import Metrics
from proxy.serving import safe_component, send_blob, send_fill

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
DIGEST = hashlib.sha256(DATA).hexdigest()
BATCH = 256 * 1024  # mirror_store.fill.WRITE_BATCH: what a reader can get before the end


class Srv:
    """A running test server: its URL, its metrics, and how many requests it has finished."""

    def __init__(self, url: str, metrics: Metrics) -> None:
        self.url, self.metrics = url, metrics
        self.finished = 0
        self._cond = asyncio.Condition()

    async def done(self, n: int) -> None:
        """Wait until *n* handler calls have returned (counting happens before that)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.finished >= n)

    async def _one_finished(self) -> None:
        async with self._cond:
            self.finished += 1
            self._cond.notify_all()

    async def served(self, source: str, after: int) -> tuple[float, float]:
        """(responses counted, bytes counted) for *source*, once *after* requests finished."""
        await self.done(after)
        r = self.metrics.registry
        n = r.get_sample_value("airlock_artifacts_served_total", {"source": source}) or 0.0
        b = r.get_sample_value("airlock_served_bytes_total", {"source": source}) or 0.0
        return n, b


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, Srv]]:
    """One route (any method, any path) on 127.0.0.1 port 0; yields its URL and the server."""
    app = web.Application(middlewares=[error_middleware])
    metrics = Metrics()
    app[METRICS] = metrics
    srv: Srv

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            await srv._one_finished()

    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    srv = Srv(f"http://127.0.0.1:{runner.addresses[0][1]}/f", metrics)
    try:
        yield srv.url, srv
    finally:
        await runner.cleanup()


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    p = tmp_path / "blob"
    p.write_bytes(DATA)
    return p


def blob_handler(path: Path, tainted: int | None = None, digest: str = DIGEST) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        extra = {"X-Extra": "yes"}
        if tainted is None:  # the default
            return await send_blob(request, path, digest, "application/x-test", extra)
        return await send_blob(request, path, digest, "application/x-test", extra, tainted)

    return handle


# ---- send_blob ------------------------------------------------------------------------------


async def test_a_stored_blob_is_sent_whole_with_its_headers_and_counted(blob: Path) -> None:
    async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            body = await r.read()
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/x-test"
            assert r.headers["Accept-Ranges"] == "bytes"
            assert r.headers["ETag"] == f'"{DIGEST}"'
            assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert r.headers["X-Extra"] == "yes"
            assert r.headers["Content-Length"] == str(len(DATA))
            assert "Content-Range" not in r.headers
        assert body == DATA
        assert await srv.served("store", 1) == (1, len(DATA))
        assert await srv.served("upstream", 1) == (0, 0)


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=10-19", 10, 20), ("bytes=10240-", None, None), ("bytes=-5", 10235, 10240)],
)
async def test_a_range_of_a_stored_blob(
    blob: Path, header: str, start: int | None, stop: int | None
) -> None:
    async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": header}) as r:
            body = await r.read()
            if start is None:  # past the end: 416 naming the size
                assert r.status == 416
                assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"
                assert await srv.served("store", 1) == (0, 0)
                return
            assert stop is not None
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
            assert r.headers["Content-Length"] == str(stop - start)
        assert body == DATA[start:stop]
        assert await srv.served("store", 1) == (1, stop - start)


async def test_a_resume_from_offset_one_without_a_taint_record_is_a_range(blob: Path) -> None:
    """send_blob's default is "no unverified bytes ever sent": ``bytes=1-`` is honoured."""
    async with serve(blob_handler(blob)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": "bytes=1-"}) as r:
            assert r.status == 206
            assert await r.read() == DATA[1:]


async def test_a_resume_into_a_tainted_prefix_gets_the_whole_blob(blob: Path) -> None:
    async with serve(blob_handler(blob, tainted=100)) as (url, _), aiohttp.ClientSession() as s:
        with capture_logs() as logs:
            async with s.get(url, headers={"Range": "bytes=100-"}) as r:
                assert r.status == 200
                assert await r.read() == DATA
        refused = [e for e in logs if e["event"] == "resume_refused"]
        assert len(refused) == 1
        assert refused[0]["key"] == DIGEST
        assert refused[0]["range"] == "bytes=100-"
        assert refused[0]["unverified_upto"] == 100
        assert refused[0]["log_level"] == "warning"
        assert "failed verification" in refused[0]["reason"]
        # past the taint: a range again, and nothing logged
        with capture_logs() as logs:
            async with s.get(url, headers={"Range": "bytes=101-"}) as r:
                assert r.status == 206
                assert await r.read() == DATA[101:]
        assert not [e for e in logs if e["event"] == "resume_refused"]


async def test_if_range_with_the_blobs_etag_keeps_the_range(blob: Path) -> None:
    async with serve(blob_handler(blob)) as (url, _), aiohttp.ClientSession() as s:
        h = {"Range": "bytes=0-9", "If-Range": f'"{DIGEST}"'}
        async with s.get(url, headers=h) as r:
            assert r.status == 206
            assert await r.read() == DATA[:10]
        h = {"Range": "bytes=0-9", "If-Range": '"other"'}
        async with s.get(url, headers=h) as r:
            assert r.status == 200
            assert await r.read() == DATA


@pytest.mark.parametrize(
    "inm",
    [f'"{DIGEST}"', f'W/"{DIGEST}"', f'"x", "{DIGEST}"', f'"x",,"{DIGEST}"', "*", f" {DIGEST} "],
)
async def test_if_none_match_with_the_digest_is_304(blob: Path, inm: str) -> None:
    async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"If-None-Match": inm}) as r:
            assert r.status == 304
            assert r.headers["ETag"] == f'"{DIGEST}"'
            assert await r.read() == b""
        assert await srv.served("store", 1) == (0, 0)


@pytest.mark.parametrize("inm", ['"other"', "", ",", f'"{DIGEST[:-1]}"', f'"{DIGEST}x"'])
async def test_if_none_match_with_another_tag_sends_the_blob(blob: Path, inm: str) -> None:
    async with serve(blob_handler(blob)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"If-None-Match": inm}) as r:
            assert r.status == 200
            assert await r.read() == DATA


async def test_head_of_a_stored_blob_has_the_length_and_no_body(blob: Path) -> None:
    async with serve(blob_handler(blob)) as (url, _), aiohttp.ClientSession() as s:
        async with s.head(url) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(DATA))
            assert r.headers["ETag"] == f'"{DIGEST}"'
            assert await r.read() == b""
        async with s.head(url, headers={"Range": "bytes=5-9"}) as r:
            assert r.status == 206
            assert r.headers["Content-Length"] == "5"
            assert r.headers["Content-Range"] == f"bytes 5-9/{len(DATA)}"
        # then a GET on the same connection still gets exactly the body
        async with s.get(url) as r:
            assert await r.read() == DATA


async def test_an_empty_blob_is_an_empty_200(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    empty = hashlib.sha256(b"").hexdigest()
    async with serve(blob_handler(p, digest=empty)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == "0"
            assert await r.read() == b""
        async with s.get(url) as r:  # the connection is still usable
            assert r.status == 200


async def test_a_missing_blob_raises_before_anything_is_sent(tmp_path: Path) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await send_blob(request, tmp_path / "gone", DIGEST, "application/x-test")
        except FileNotFoundError:
            return web.Response(status=299, text="refetch")

    async with serve(handle) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert (r.status, await r.text()) == (299, "refetch")


async def test_without_sendfile_the_blob_is_copied_in_chunks(
    blob: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS transports have no sendfile: the copy loop must send exactly the asked bytes."""

    async def no_sendfile(*_: Any, **__: Any) -> int:
        raise NotImplementedError

    monkeypatch.setattr("proxy.serving.CHUNK", 1000)  # several chunks, the last one short
    monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", no_sendfile)
    async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200
            assert await r.read() == DATA
        async with s.get(url, headers={"Range": "bytes=999-3001"}) as r:
            assert r.status == 206
            assert await r.read() == DATA[999:3002]
        assert await srv.served("store", 2) == (2, len(DATA) + 2003)


async def test_a_blob_that_shrinks_while_copied_cuts_the_transfer(
    blob: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short reads of the blob (truncated under the server) end in a cut transfer: never a
    complete-looking body and never an error page written into the started 200."""

    async def no_sendfile(*_: Any, **__: Any) -> int:
        raise NotImplementedError

    real_pread = os.pread

    def shrinking_pread(fd: int, n: int, pos: int) -> bytes:
        return b"" if pos >= 2000 else real_pread(fd, min(n, 2000 - pos), pos)

    monkeypatch.setattr("proxy.serving.CHUNK", 1000)
    monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", no_sendfile)
    monkeypatch.setattr("proxy.serving.os.pread", shrinking_pread)
    with capture_logs() as logs:
        async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
            assert await srv.served("store", 1) == (1, 0)
    assert [e for e in logs if e["event"] == "unhandled_error"] == []


async def test_a_client_gone_during_sendfile_is_counted_with_no_bytes(
    blob: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def reset(*_: Any, **__: Any) -> int:
        raise ConnectionResetError

    monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", reset)
    async with serve(blob_handler(blob)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200  # headers went out; the body never comes
        assert await srv.served("store", 1) == (1, 0)


# ---- send_fill ------------------------------------------------------------------------------


class _Body:
    """An upstream body: *head*, then (after *gate*) *last* or *error*."""

    def __init__(
        self, head: bytes, last: bytes, gate: asyncio.Event, size: int | None, error: bool
    ) -> None:
        self.head, self.last, self.gate, self._size, self.error = head, last, gate, size, error

    @property
    def size(self) -> int | None:
        return self._size

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.head
        await self.gate.wait()
        if self.error:
            raise ConnectionResetError("upstream cut")
        yield self.last


BIG = (bytes(range(251)) * (BATCH // 251 + 2))[: BATCH + 1000]  # a batch, then 1000 more
BIG_DIGEST = hashlib.sha256(BIG).hexdigest()


async def _no_commit(_: Digest) -> None:
    return None


def start_fill(
    filler: Filler, gate: asyncio.Event, *, sized: bool = True, error: bool = False
) -> Fill:
    body = _Body(BIG[:BATCH], BIG[BATCH:], gate, len(BIG) if sized else None, error)

    @asynccontextmanager
    async def open_body() -> AsyncIterator[_Body]:
        yield body

    return filler.start("fill-key", open_body, {"sha256": BIG_DIGEST}, None, _no_commit)


def fill_handler(fill: Fill, tainted: int | None = None, hint: str | None = BIG_DIGEST) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if tainted is None:  # the default
            resp = await send_fill(request, fill, hint, "application/x-test", {"X-Extra": "y"})
        else:
            resp = await send_fill(
                request, fill, hint, "application/x-test", {"X-Extra": "y"}, tainted
            )
        if resp is None:
            return web.Response(status=299, text="finished before attaching")
        return resp

    return handle


async def _read_then_release(r: aiohttp.ClientResponse, gate: asyncio.Event) -> bytes:
    """Read the first byte (the reader is attached), let upstream finish, read the rest."""
    first = await r.content.readexactly(1)
    gate.set()
    return first + await r.read()


async def test_a_running_fill_is_streamed_whole_and_counted(tmp_path: Path) -> None:
    gate = asyncio.Event()
    filler = Filler(LocalBlobStore(tmp_path))
    fill = start_fill(filler, gate)
    async with serve(fill_handler(fill)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(BIG))
            assert r.headers["ETag"] == f'"{BIG_DIGEST}"'
            assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert r.headers["Content-Type"] == "application/x-test"
            assert r.headers["Accept-Ranges"] == "bytes"
            assert r.headers["X-Extra"] == "y"
            assert await _read_then_release(r, gate) == BIG
        assert await srv.served("upstream", 1) == (1, len(BIG))
        assert await srv.served("store", 1) == (0, 0)


async def test_a_fill_without_a_hint_has_no_etag(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill, hint=None)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200
            assert "ETag" not in r.headers
            assert "Cache-Control" not in r.headers
            assert await _read_then_release(r, gate) == BIG


async def test_a_range_of_a_running_fill(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": "bytes=100-"}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 100-{len(BIG) - 1}/{len(BIG)}"
            assert r.headers["Content-Length"] == str(len(BIG) - 100)
            assert await _read_then_release(r, gate) == BIG[100:]
        assert await srv.served("upstream", 1) == (1, len(BIG) - 100)


async def test_a_resume_from_offset_one_of_a_fill_without_a_taint_record(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": "bytes=1-"}) as r:
            assert r.status == 206
            assert await _read_then_release(r, gate) == BIG[1:]


async def test_a_resume_into_a_tainted_prefix_of_a_fill_gets_the_whole_body(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    handler = fill_handler(fill, tainted=100)
    async with serve(handler) as (url, _), aiohttp.ClientSession() as s:
        with capture_logs() as logs:
            async with s.get(url, headers={"Range": "bytes=100-"}) as r:
                assert r.status == 200
                assert "Content-Range" not in r.headers
                assert await _read_then_release(r, gate) == BIG
        refused = [e for e in logs if e["event"] == "resume_refused"]
        assert [(e["key"], e["unverified_upto"]) for e in refused] == [("fill-key", 100)]


async def test_if_range_with_the_fills_hint_keeps_the_range(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill)) as (url, _), aiohttp.ClientSession() as s:
        h = {"Range": "bytes=50-", "If-Range": f'"{BIG_DIGEST}"'}
        async with s.get(url, headers=h) as r:
            assert r.status == 206
            assert await _read_then_release(r, gate) == BIG[50:]


async def test_an_unsatisfiable_range_of_a_fill_is_416(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": f"bytes={len(BIG)}-"}) as r:
            assert r.status == 416
            assert r.headers["Content-Range"] == f"bytes */{len(BIG)}"
    gate.set()
    await fill.wait_finished()


async def test_a_fill_of_unknown_size_is_sent_whole_even_for_a_range(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate, sized=False)
    async with serve(fill_handler(fill)) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Range": "bytes=100-"}) as r:
            assert r.status == 200
            assert "Content-Length" not in r.headers
            assert await _read_then_release(r, gate) == BIG


async def test_head_of_a_running_fill_sends_no_body(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    async with serve(fill_handler(fill)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.head(url) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(BIG))
            assert await r.read() == b""
        assert await srv.served("upstream", 1) == (0, 0)  # a HEAD sends no artifact
        gate.set()
        await fill.wait_finished()


async def test_a_fill_that_fails_cuts_the_clients_transfer(tmp_path: Path) -> None:
    gate = asyncio.Event()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate, error=True)
    async with serve(fill_handler(fill)) as (url, srv), aiohttp.ClientSession() as s:
        with capture_logs() as logs:
            async with s.get(url) as r:
                assert r.status == 200
                got = await r.content.readexactly(1)
                gate.set()
                with pytest.raises(aiohttp.ClientPayloadError):
                    got += await r.content.read()
        assert len(got) < len(BIG)
        aborted = [e for e in logs if e["event"] == "transfer_aborted"]
        assert [(e["key"], e["reason"]) for e in aborted] == [
            ("fill-key", "upstream transfer failed: upstream cut")
        ]
        assert aborted[0]["log_level"] == "warning"
        n, sent = await srv.served("upstream", 1)
        assert n == 1
        assert 0 < sent < len(BIG)


async def test_a_fill_that_finished_before_attaching_is_served_from_the_store(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    gate.set()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate)
    await fill.wait_finished()
    async with serve(fill_handler(fill)) as (url, srv), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert (r.status, await r.text()) == (299, "finished before attaching")
        assert await srv.served("upstream", 1) == (0, 0)


async def test_a_fill_that_failed_before_anything_was_sent_raises(tmp_path: Path) -> None:
    gate = asyncio.Event()
    gate.set()
    fill = start_fill(Filler(LocalBlobStore(tmp_path)), gate, error=True)
    with pytest.raises(FillFailed):
        await fill.wait_finished()

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            await send_fill(request, fill, None, "application/x-test")
        except FillFailed as e:
            return web.Response(status=502, text=e.reason)
        return web.Response(status=200)

    async with serve(handle) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert (r.status, await r.text()) == (502, "upstream transfer failed: upstream cut")


# ---- safe_component -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "x" * 255, "a.b", "...", "a..b", " ", "~", "é"])
def test_safe_component_keeps_names(value: str) -> None:
    assert safe_component(value, "name") == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "name must be 1-255 characters"),
        ("x" * 256, "name must be 1-255 characters"),
        (".", "name '.' is not a valid name"),
        ("..", "name '..' is not a valid name"),
        ("a/b", "name 'a/b' is not a valid name"),
        ("a\\b", "name 'a\\\\b' is not a valid name"),
        ("a\x00b", "name 'a\\x00b' is not a valid name"),
        ("a\x1fb", "name contains control characters"),
        ("a\x01", "name contains control characters"),
        ("a\x7fb", "name contains control characters"),
        ("/" + "y" * 100, f"name {('/' + 'y' * 79)!r} is not a valid name"),
    ],
)
def test_safe_component_refuses(value: str, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        safe_component(value, "name")
    assert e.value.message == message


def test_safe_component_max_len() -> None:
    assert safe_component("abc", "tag", max_len=3) == "abc"
    with pytest.raises(BadRequest) as e:
        safe_component("abcd", "tag", max_len=3)
    assert e.value.message == "tag must be 1-3 characters"


async def test_a_refused_component_is_a_400_naming_it() -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(text=safe_component(request.query["n"], "file name"))

    async with serve(handle) as (url, _), aiohttp.ClientSession() as s:
        async with s.get(url, params={"n": ".."}) as r:
            assert r.status == 400
            assert await r.text() == "Bad request: file name '..' is not a valid name\n"
