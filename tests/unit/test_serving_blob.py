"""Stored-blob responses (proxy/serving.py send_blob) through a real aiohttp server and a real
HTTP client.

The handlers call ``send_blob`` exactly as the ecosystem routes do; what is checked is what a
client sees (status, headers, bytes, a cut transfer) and what is counted. These are the fast
tests of issue #18's mutation runs: the pip/uv/hub integration tests reach the same code, but
each mutant would cost them a minute. The server helpers are in serving_support.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from proxy.serving import send_blob
from tests.unit.serving_support import Handler, serve

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
DIGEST = hashlib.sha256(DATA).hexdigest()


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
