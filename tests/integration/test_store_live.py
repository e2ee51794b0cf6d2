"""Store maintenance next to live downloads (issue #13, faults 2 and 3), with real processes.

A download is held halfway by the upstream while ``airlock store gc`` and a second ``airlock
serve`` run against the same store: the download completes with the right bytes, gc left its
temp file alone, the second server refused in one line and deleted nothing.  A server killed
with SIGKILL mid-download leaves a partial file that fsck and gc report with its size and gc
removes.  A temp file deleted under a fill is a storage error in the log, not a verification
decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from mirror_store.blobs import BlobWriter, LocalBlobStore
from proxy.settings import UpstreamSettings
from tests.airlock_process import airlock_serve, run_airlock, serve_env
from tests.conftest import Proxy, ProxyFactory
from tests.fakes.dists import Dist
from tests.fakes.hf_fixtures import MODEL
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.pypi_index import FakeIndex

BIG = "tiny_lib-9.0.tar.gz"
DATA = os.urandom(4 * 1024 * 1024)
HALF = len(DATA) // 2  # several of the fill's write batches: on disk while the rest waits
PATH = "/pypi/files/tiny-lib/" + BIG


class HeldIndex(FakeIndex):
    """The fake index, sending the first half of BIG and the rest only once ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.add(Dist(BIG, DATA, None))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["filename"] != BIG:
            return await super()._file(request)
        self.requests[request.path] += 1
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(DATA)
        await resp.prepare(request)
        await resp.write(DATA[:HALF])
        await self.gate.wait()
        with contextlib.suppress(ConnectionError):  # the proxy may have been killed
            await resp.write(DATA[HALF:])
            await resp.write_eof()
        return resp


@asynccontextmanager
async def held_index() -> AsyncIterator[HeldIndex]:
    index = HeldIndex()
    async with index.running():
        try:
            yield index
        finally:
            index.gate.set()  # let a held handler end before the server stops


def _env(index: FakeIndex) -> dict[str, str]:
    return {
        "AIRLOCK_PYPI__OFFLINE": "false",
        "AIRLOCK_PYPI__UPSTREAMS": f'[{{name="fake", url="{index.simple_url}"}}]',
    }


def _temps(store: Path) -> list[Path]:
    return sorted((store / "tmp").glob("blob-*.part"))


async def _first_bytes(s: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, bytes]:
    """Start the download; return once its first bytes arrived (so its temp file exists)."""
    async with s.get(url.replace(PATH, "/pypi/simple/tiny-lib/")) as r:
        assert r.status == 200
    r = await s.get(url)
    assert r.status == 200, await r.text()
    head = await r.content.readany()
    assert head
    return r, head


async def test_gc_and_a_second_serve_leave_a_download_in_flight_alone(tmp_path: Path) -> None:
    store = tmp_path / "store"
    async with held_index() as index:
        env = serve_env(tmp_path, **_env(index))
        async with airlock_serve(tmp_path, **_env(index)) as first, aiohttp.ClientSession() as s:
            r, head = await _first_bytes(s, first.url + PATH)
            [temp] = _temps(store)
            inode = temp.stat().st_ino

            code, _, err = await run_airlock("store", "gc", "--min-age", "0", "-v", env=env)
            assert code == 0, err
            assert "0 abandoned temp files (0 bytes) removed" in err[-1]
            assert "1 downloads in progress left alone" in err[-1]
            assert temp.stat().st_ino == inode

            code, out, err = await run_airlock("serve", "--port", "0", env=env)
            assert code == 1, err
            assert out == []
            assert err == [
                f"airlock: the store at {store} is in use by another airlock serve "
                f"(pid {first.proc.pid})"
            ]
            assert temp.stat().st_ino == inode

            index.gate.set()
            body = head + await r.read()
            r.release()
    assert body == DATA
    assert index.requests["/files/" + BIG] == 1
    assert _temps(store) == []


async def test_a_killed_servers_partial_file_is_reported_and_collected(tmp_path: Path) -> None:
    store = tmp_path / "store"
    async with held_index() as index:
        env = serve_env(tmp_path, **_env(index))
        async with airlock_serve(tmp_path, **_env(index)) as first, aiohttp.ClientSession() as s:
            r, _ = await _first_bytes(s, first.url + PATH)
            first.proc.kill()  # SIGKILL: no cleanup of any kind
            await first.proc.wait()
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
            r.release()
    [temp] = _temps(store)
    size = temp.stat().st_size
    assert size > 0
    listed = f"tmp/{temp.name} ({size} bytes"
    summary = f"1 abandoned temp files ({size} bytes"

    code, out, err = await run_airlock("store", "fsck", "-v", env=env)
    assert code == 0, err
    assert [line for line in out if line.startswith(f"ABANDONED {listed}")]
    assert summary in err[-1]

    _, out, err = await run_airlock("store", "gc", "--dry-run", "--min-age", "0", "-v", env=env)
    assert [line for line in out if line.startswith(f"would remove {listed}")]
    assert summary in err[-1]
    assert ") to remove (dry run);" in err[-1]
    _, _, err = await run_airlock("store", "gc", env=env)  # default --min-age: an hour
    assert "1 younger than --min-age kept" in err[-1]
    assert temp.exists()

    code, _, err = await run_airlock("store", "gc", "--min-age", "0", env=env)
    assert code == 0, err
    assert summary in err[-1]
    assert ") removed;" in err[-1]
    assert _temps(store) == []


async def test_a_temp_file_deleted_under_a_download_is_a_storage_error(
    start_proxy: ProxyFactory,
) -> None:
    """What the old gc did to a download in flight: logged as storage_error, not as a policy
    decision with rule verification; the client's transfer fails short."""
    async with held_index() as index:
        proxy = await start_proxy(UpstreamSettings(name="fake", url=index.simple_url))
        async with aiohttp.ClientSession() as s:
            r, _ = await _first_bytes(s, proxy.url + PATH)
            [temp] = _temps(proxy.settings.store.path)
            with capture_logs() as logs:
                temp.unlink()
                index.gate.set()
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
            r.release()
    [error] = [e for e in logs if e["event"] == "storage_error"]
    assert error["file"] == BIG
    assert "temp file deleted while it was written" in error["error"]
    assert [e for e in logs if e["event"] == "decision"] == []


async def test_a_full_disk_under_a_hub_download_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub side likewise: storage_error, not the hub's bytes failing (hf_fill_failed)."""
    real = LocalBlobStore.writer

    def full_disk(self: LocalBlobStore, *args: Any, **kw: Any) -> BlobWriter:
        w = real(self, *args, **kw)

        def write(chunk: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(w.temp_path))

        w.write = write  # type: ignore[method-assign]
        return w

    monkeypatch.setattr(LocalBlobStore, "writer", full_disk)
    async with (
        start_fake_hub() as hub,
        hf_proxy(tmp_path, hub.url) as proxy,
        aiohttp.ClientSession() as s,
    ):
        sha = hub.expect(MODEL, "config.json").commit  # a branch is refused by the policy
        with capture_logs() as logs:
            async with s.get(f"{proxy.endpoint}/{MODEL}/resolve/{sha}/config.json") as r:
                with pytest.raises(aiohttp.ClientPayloadError):  # failed short
                    await r.read()
    [error] = [e for e in logs if e["event"] == "storage_error"]
    assert (error["ecosystem"], error["path"]) == ("hf", "config.json")
    assert error["error"].startswith("storage error: No space left on device")
    assert [e for e in logs if e["event"] == "hf_fill_failed"] == []


async def test_a_store_that_cannot_start_a_file_answers_500_not_502(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing sent yet: the client is told it is this server's storage, not the upstream."""

    def no_space(self: LocalBlobStore, *args: Any, **kw: Any) -> BlobWriter:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.root / "tmp"))

    monkeypatch.setattr(LocalBlobStore, "writer", no_space)
    whl = "tiny_lib-1.1-py3-none-any.whl"
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            assert r.status == 200
        with capture_logs() as logs:
            async with s.get(f"{proxy.url}/pypi/files/tiny-lib/{whl}") as r:
                assert r.status == 500
                assert f"{whl}: storage error: No space left on device" in await r.text()
    assert [e["file"] for e in logs if e["event"] == "storage_error"] == [whl]
    assert [e for e in logs if e["event"] == "decision" and not e["allow"]] == []
