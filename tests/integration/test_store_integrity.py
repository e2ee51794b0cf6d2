"""Never trust unverified bytes: wrong or cut bodies never become visible; one fetch per file."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest

from mirror_store.blobs import LocalBlobStore
from proxy.appkeys import BLOBS
from tests.clients import pip_install
from tests.conftest import Proxy
from tests.fakes.pypi_index import FakeIndex

WHL = "tiny_lib-1.1-py3-none-any.whl"
URL = "/pypi/files/tiny-lib/" + WHL


def _blob_count(proxy: Proxy) -> int:
    blobs: LocalBlobStore = proxy.app[BLOBS]
    return len(list(blobs.digests()))


def _tmp_files(proxy: Proxy) -> list[Path]:
    return list((proxy.settings.store.path / "tmp").iterdir())


async def _read(s: aiohttp.ClientSession, url: str) -> bytes:
    async with s.get(url) as r:
        assert r.status == 200
        return await r.read()


async def _prime(s: aiohttp.ClientSession, proxy: Proxy) -> None:
    async with s.get(proxy.simple + "tiny-lib/") as r:
        assert r.status == 200


async def test_wrong_bytes_fail_the_client_and_store_nothing(
    proxy: Proxy, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.faults.corrupt.add(WHL)
    data = fake_index.file(WHL).dist.data
    corrupt = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
    run = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "t", home=tmp_path)
    assert run.returncode != 0
    assert not (tmp_path / "t" / "tiny_lib-1.1.dist-info").exists()
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with s.get(proxy.url + URL) as r:
                await r.read()
    stored = set(proxy.app[BLOBS].digests())
    assert hashlib.sha256(corrupt).hexdigest() not in stored
    assert hashlib.sha256(data).hexdigest() not in stored
    assert _tmp_files(proxy) == []


async def test_upstream_cut_mid_body_leaves_nothing_visible(
    proxy: Proxy, fake_index: FakeIndex
) -> None:
    fake_index.faults.cut.add(WHL)
    async with aiohttp.ClientSession() as s:
        await _prime(s, proxy)
        before = _blob_count(proxy)
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read(s, proxy.url + URL)
        assert _blob_count(proxy) == before
        assert _tmp_files(proxy) == []
        # The fault cleared, the same request succeeds and verifies.
        fake_index.faults.cut.clear()
        async with s.get(proxy.url + URL) as r:
            body = await r.read()
    assert hashlib.sha256(body).hexdigest() == fake_index.file(WHL).dist.sha256


async def test_twenty_concurrent_downloads_make_one_upstream_fetch(
    proxy: Proxy, fake_index: FakeIndex
) -> None:
    fake_index.faults.slow[WHL] = 0.3  # keep the first fetch in flight while others join
    want = fake_index.file(WHL).dist.sha256

    async def one(s: aiohttp.ClientSession) -> str:
        async with s.get(proxy.url + URL) as r:
            assert r.status == 200
            return hashlib.sha256(await r.read()).hexdigest()

    async with aiohttp.ClientSession() as s:
        await _prime(s, proxy)
        digests = await asyncio.gather(*(one(s) for _ in range(20)))
    assert digests == [want] * 20
    assert fake_index.requests["/files/" + WHL] == 1


async def test_range_request_answers_the_exact_slice(proxy: Proxy, fake_index: FakeIndex) -> None:
    data = fake_index.file(WHL).dist.data
    async with aiohttp.ClientSession() as s:
        await _prime(s, proxy)
        async with s.get(proxy.url + URL, headers={"Range": "bytes=10-99"}) as r:
            # first request may be served while filling; both paths must honour Range
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
            assert await r.read() == data[10:100]
        async with s.get(proxy.url + URL, headers={"Range": "bytes=-20"}) as r:
            assert r.status == 206
            assert await r.read() == data[-20:]
        async with s.get(proxy.url + URL, headers={"Range": f"bytes={len(data) + 5}-"}) as r:
            assert r.status == 416
        async with s.get(proxy.url + URL) as r:
            etag = r.headers["ETag"]
            assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
            assert await r.read() == data
        async with s.get(proxy.url + URL, headers={"If-None-Match": etag}) as r:
            assert r.status == 304


async def test_range_edges_from_the_store(proxy: Proxy, fake_index: FakeIndex) -> None:
    """RFC 9110 edges on a stored file: empty suffix and starts past the end are 416 with the
    size, multi-range and a stale If-Range give the whole body, a current If-Range the slice."""
    data = fake_index.file(WHL).dist.data
    size = len(data)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    async with aiohttp.ClientSession() as s:
        await _prime(s, proxy)
        assert await _read(s, proxy.url + URL) == data  # stored from here on
        for unsatisfiable in ("bytes=-0", f"bytes={size}-", f"bytes={size}-{size + 10}"):
            async with s.get(proxy.url + URL, headers={"Range": unsatisfiable}) as r:
                assert r.status == 416, unsatisfiable
                assert r.headers["Content-Range"] == f"bytes */{size}"
        whole = [
            {"Range": "bytes=0-1,5-6"},
            {"Range": "bytes=9-3"},
            {"Range": "pages=1-2"},
            {"Range": "bytes=10-", "If-Range": '"0123"'},
            {"Range": "bytes=10-", "If-Range": "Tue, 01 Dec 2026 10:00:00 GMT"},
        ]
        for headers in whole:
            async with s.get(proxy.url + URL, headers=headers) as r:
                assert r.status == 200, headers
                assert "Content-Range" not in r.headers
                assert await r.read() == data
        async with s.get(proxy.url + URL, headers={"Range": "bytes=10-", "If-Range": etag}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 10-{size - 1}/{size}"
            assert await r.read() == data[10:]
        async with s.get(proxy.url + URL, headers={"Range": f"bytes={size - 1}-"}) as r:
            assert r.status == 206
            assert await r.read() == data[-1:]


@pytest.mark.parametrize(
    "path",
    [
        "/pypi/files/tiny-lib/..",
        "/pypi/files/tiny-lib/%2e%2e",
        "/pypi/files/tiny-lib/..%2f..%2fetc%2fpasswd",
        "/pypi/files/tiny-lib/%2fetc%2fpasswd",
        "/pypi/files/..%2f..%2fetc/passwd",
        "/pypi/files/tiny-lib/a%00b.whl",
        "/pypi/files/tiny-lib/" + "a" * 400 + ".whl",
        "/pypi/simple/%2e%2e/",
        "/pypi/simple/..%2f..%2f/",
        "/pypi/simple/tiny-l\u0456b/",  # Cyrillic i look-alike
        "/pypi/simple/" + "a" * 300 + "/",
        "/pypi/simple/a%00b/",
        "/pypi/files/tiny-lib/tiny_lib-9.9-py3-none-any.whl",
        "/pypi/files/TINY-LIB/" + WHL,
    ],
)
async def test_name_tricks_get_a_4xx_never_a_500(proxy: Proxy, path: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + path, allow_redirects=False) as r:
            assert 400 <= r.status < 500, (path, r.status, await r.text())
    # nothing outside the store was touched or created
    assert not (proxy.settings.store.path.parent / "etc").exists()
