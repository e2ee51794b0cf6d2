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
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from proxy.settings import UpstreamSettings
from tests.conftest import ProxyFactory
from tests.fakes.dists import Dist
from tests.fakes.pypi_index import FakeIndex
from tests.integration.airlock_process import airlock, airlock_env, serving

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


def _env(tmp_path: Path, policies: Path, index: FakeIndex) -> dict[str, str]:
    return airlock_env(
        store__path=str(tmp_path / "store"),
        policy__path=str(policies),
        policy__reload_interval="0",
        pypi__upstreams=f'[{{name="fake", url="{index.simple_url}"}}]',
        log__level="warning",
    )


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


async def test_gc_and_a_second_serve_leave_a_download_in_flight_alone(
    tmp_path: Path, policies_dir: Path
) -> None:
    store = tmp_path / "store"
    async with held_index() as index:
        env = _env(tmp_path, policies_dir, index)
        async with serving(env, tmp_path / "serve.log") as first, aiohttp.ClientSession() as s:
            r, head = await _first_bytes(s, first.url + PATH)
            [temp] = _temps(store)
            inode = temp.stat().st_ino

            gc = await airlock("store", "gc", "--min-age", "0", "-v", env=env)
            assert gc.returncode == 0, gc.output
            assert "0 abandoned temp files (0 bytes) removed" in gc.stderr
            assert "1 downloads in progress left alone" in gc.stderr
            assert temp.stat().st_ino == inode

            second = await airlock("serve", "--port", "0", env=env, timeout=60)
            assert second.returncode == 1, second.output
            assert second.stdout == ""
            assert second.stderr.splitlines() == [
                f"airlock: the store at {store} is in use by another airlock serve "
                f"(pid {first.pid})"
            ]
            assert temp.stat().st_ino == inode

            index.gate.set()
            body = head + await r.read()
            r.release()
    assert body == DATA
    assert index.requests["/files/" + BIG] == 1
    assert _temps(store) == []


async def test_a_killed_servers_partial_file_is_reported_and_collected(
    tmp_path: Path, policies_dir: Path
) -> None:
    store = tmp_path / "store"
    async with held_index() as index:
        env = _env(tmp_path, policies_dir, index)
        async with serving(env, tmp_path / "serve.log") as first, aiohttp.ClientSession() as s:
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

    fsck = await airlock("store", "fsck", "-v", env=env)
    assert fsck.returncode == 0, fsck.output
    assert f"ABANDONED {listed}" in fsck.stdout
    assert summary in fsck.stderr

    dry = await airlock("store", "gc", "--dry-run", "--min-age", "0", "-v", env=env)
    assert f"would remove {listed}" in dry.stdout
    assert summary in dry.stderr
    assert ") to remove (dry run);" in dry.stderr
    kept = await airlock("store", "gc", env=env)  # default --min-age: an hour
    assert "1 younger than --min-age kept" in kept.stderr
    assert temp.exists()

    gc = await airlock("store", "gc", "--min-age", "0", env=env)
    assert gc.returncode == 0, gc.output
    assert summary in gc.stderr
    assert ") removed;" in gc.stderr
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
