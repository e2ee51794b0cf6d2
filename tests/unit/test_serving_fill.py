"""Running-fill responses (proxy/serving.py send_fill) and safe_component through a real
aiohttp server and a real HTTP client.

The handlers call ``send_fill``/``safe_component`` exactly as the ecosystem routes do; what is
checked is what a client sees (status, headers, bytes, a cut transfer) and what is counted.
These are the fast tests of issue #18's mutation runs (send_blob's are in
test_serving_blob.py, the server helpers in serving_support.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Fill, Filler, FillFailed
from proxy.errors import BadRequest
from proxy.serving import safe_component, send_fill
from tests.unit.serving_support import Handler, serve

BATCH = 256 * 1024  # mirror_store.fill.WRITE_BATCH: what a reader can get before the end


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
