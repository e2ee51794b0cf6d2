"""Hub file bytes (proxy/hf/files.py) through a real aiohttp server and a real HTTP client.

The upstream is a stand-in ``HubSource`` (it counts the bodies it opens); the store, its
metadata tables and the filler are the real ones.  The hub clients' integration tests
(test_hf_resume.py, test_hf_proxy.py) reach the same code through huggingface_hub; these are
the fast ones for issue #18's mutation runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from structlog.testing import capture_logs

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.fill import Fill, Filler, FillFailed
from mirror_store.metadata import SqliteMetadata
from proxy.errors import AirlockError, OfflineMiss, UpstreamUnavailable, error_middleware
from proxy.hf.files import HfFileContext, HfFiles
from proxy.hf.model import FileMeta, RepoRef
from proxy.hf.sources import Auth, HubSource
from proxy.hf.stored import HfTables

COMMIT = "c" * 40
REPO = RepoRef("model", "acme/tiny")
BATCH = 256 * 1024  # mirror_store.fill.WRITE_BATCH
WEIGHTS = (bytes(range(251)) * (BATCH // 251 + 2))[: BATCH + 1000]
CONFIG = b'{"model_type": "tiny"}\n'


def lfs(path: str, data: bytes) -> FileMeta:
    return FileMeta(path, len(data), True, hashlib.sha256(data).hexdigest(), None)


def regular(path: str, data: bytes) -> FileMeta:
    sha1 = hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()
    return FileMeta(path, len(data), False, None, sha1)


@dataclass
class _Body:
    data: bytes
    cut: bool
    gate: asyncio.Event | None

    @property
    def size(self) -> int | None:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data[:BATCH]
        if self.gate is not None:
            await self.gate.wait()
        if self.cut:
            raise ConnectionResetError("hub cut")
        yield self.data[BATCH:]


@dataclass
class FakeSource:
    """What HfFiles uses of a HubSource: offline, offline_miss, open_file."""

    bodies: dict[str, bytes]
    offline: bool = False
    opened: list[str] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)
    refuse: BaseException | None = None
    gate: asyncio.Event | None = None  # set: bodies wait for it after their first batch

    def offline_miss(self, what: str) -> AirlockError:
        return OfflineMiss(f"{what} is not in the mirror and offline mode is on")

    def open_file(
        self, ref: RepoRef, commit: str, meta: FileMeta, auth: Auth
    ) -> AbstractAsyncContextManager[_Body]:
        assert (ref, commit, auth.header) == (REPO, COMMIT, "Bearer t")

        @asynccontextmanager
        async def body() -> AsyncIterator[_Body]:
            self.opened.append(meta.path)
            if self.refuse is not None:
                raise self.refuse
            yield _Body(self.bodies[meta.path], meta.path in self.cut, self.gate)

        return body()


@dataclass
class Hub:
    url: str
    files: HfFiles
    source: FakeSource
    tables: HfTables
    blobs: LocalBlobStore
    served: list[Digest | Fill]
    filler: Filler

    async def failed(self, meta: FileMeta) -> None:
        """Wait until the failed fill of *meta* is over (the client may see the cut first)."""
        running = self.filler.get(f"hf:{meta.content_key}")
        if running is not None:
            with pytest.raises(FillFailed):
                await running.wait_finished()

    def ctx(self, meta: FileMeta) -> HfFileContext:
        return HfFileContext(REPO, COMMIT, meta, Auth("Bearer t", ""))


@asynccontextmanager
async def hub(
    tmp_path: Path, metas: list[FileMeta], bodies: dict[str, bytes]
) -> AsyncIterator[Hub]:
    meta_db = SqliteMetadata(tmp_path / "meta.sqlite")
    tables = await HfTables.install(meta_db)
    blobs = LocalBlobStore(tmp_path / "store")
    filler = Filler(blobs)
    source = FakeSource(bodies)
    files = HfFiles(cast(HubSource, source), tables, blobs, filler)
    by_path = {m.path: m for m in metas}
    served: list[Digest | Fill] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = HfFileContext(REPO, COMMIT, by_path[request.match_info["p"]], Auth("Bearer t", ""))
        if request.method == "HEAD":
            return files.head(ctx)
        return await files.get(request, ctx, served.append)

    app = web.Application(middlewares=[error_middleware])
    app.router.add_route("*", "/{p}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield Hub(
            f"http://127.0.0.1:{runner.addresses[0][1]}",
            files,
            source,
            tables,
            blobs,
            served,
            filler,
        )
    finally:
        await runner.cleanup()
        await filler.aclose()
        await meta_db.close()


async def get(
    url: str, headers: dict[str, str] | None = None, release: asyncio.Event | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    """GET *url*; *release*: set once the response headers arrived (the fill is attached)."""
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        if release is not None:
            release.set()
        return r.status, CIMultiDict(r.headers), await r.read()


async def test_an_lfs_file_is_fetched_once_then_served_from_the_store(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        h.source.gate = gate = asyncio.Event()
        status, headers, body = await get(f"{h.url}/model.bin", release=gate)
        assert (status, body) == (200, WEIGHTS)
        assert headers["ETag"] == f'"{meta.sha256}"'
        assert headers["X-Repo-Commit"] == COMMIT
        assert headers["X-Linked-Etag"] == f'"{meta.sha256}"'
        assert headers["X-Linked-Size"] == str(len(WEIGHTS))
        assert headers["Content-Type"] == "application/octet-stream"
        assert isinstance(h.served[0], Fill)
        digest = await h.tables.stored_digest(meta)
        assert digest == meta.sha256

        status, headers, body = await get(f"{h.url}/model.bin", {"Range": "bytes=10-19"})
        assert (status, body) == (206, WEIGHTS[10:20])
        assert headers["ETag"] == f'"{meta.sha256}"'
        assert headers["X-Repo-Commit"] == COMMIT
        assert h.source.opened == ["model.bin"]  # never fetched twice
        assert h.served[1:] == [digest]


async def test_a_regular_file_is_verified_by_its_git_blob_id(tmp_path: Path) -> None:
    meta = regular("config.json", CONFIG)
    sha256 = hashlib.sha256(CONFIG).hexdigest()
    async with hub(tmp_path, [meta], {"config.json": CONFIG}) as h:
        h.source.gate = gate = asyncio.Event()
        status, headers, body = await get(f"{h.url}/config.json", release=gate)
        assert (status, body) == (200, CONFIG)
        assert "ETag" not in headers  # streamed: the sha256 is not known before the end
        assert "X-Linked-Etag" not in headers
        assert headers["Content-Type"].startswith("text/plain")
        status, headers, body = await get(f"{h.url}/config.json")
        assert (status, body) == (200, CONFIG)
        assert headers["ETag"] == f'"{sha256}"'  # the store's strong ETag, not the git id
        assert h.source.opened == ["config.json"]
        assert await h.tables.stored_digest(meta) == sha256


async def test_a_regular_file_with_other_bytes_is_refused(tmp_path: Path) -> None:
    meta = regular("config.json", CONFIG)
    async with hub(tmp_path, [meta], {"config.json": CONFIG.replace(b"tiny", b"evil")}) as h:
        with capture_logs() as logs:
            h.source.gate = gate = asyncio.Event()
            async with aiohttp.ClientSession() as s, s.get(f"{h.url}/config.json") as r:
                gate.set()  # headers are here: the fill is attached
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
        [failed] = [e for e in logs if e["event"] == "hf_fill_failed"]
        assert (failed["repo"], failed["commit"], failed["path"]) == (
            "acme/tiny",
            COMMIT,
            "config.json",
        )
        assert failed["reason"].startswith("verification failed")
        assert failed["log_level"] == "warning"
        assert await h.tables.stored_digest(meta) is None
        assert [type(c) for c in h.served] == [Fill]  # the hook learns the fill failed


async def test_head_is_answered_from_the_facts(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {}) as h:
        async with aiohttp.ClientSession() as s, s.head(f"{h.url}/model.bin") as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(WEIGHTS))
            assert r.headers["ETag"] == f'"{meta.sha256}"'
            assert r.headers["X-Repo-Commit"] == COMMIT
        assert h.source.opened == []


async def test_offline_and_not_stored_is_the_offline_miss(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {}) as h:
        h.source.offline = True
        status, _, body = await get(f"{h.url}/model.bin")
        assert status == 404
        assert body == (
            b"Not mirrored (offline mode): acme/tiny/model.bin is not in the mirror"
            b" and offline mode is on\n"
        )
        assert h.source.opened == []


async def test_offline_and_stored_is_served(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        assert (await get(f"{h.url}/model.bin"))[0] == 200
        h.source.offline = True
        status, _, body = await get(f"{h.url}/model.bin")
        assert (status, body) == (200, WEIGHTS)
        assert h.source.opened == ["model.bin"]


async def test_a_blob_gone_from_the_store_is_fetched_again(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        assert (await get(f"{h.url}/model.bin"))[0] == 200
        assert meta.sha256 is not None
        assert h.blobs.delete(Digest(meta.sha256))
        status, _, body = await get(f"{h.url}/model.bin")
        assert (status, body) == (200, WEIGHTS)
        assert h.source.opened == ["model.bin", "model.bin"]
        assert await h.tables.stored_digest(meta) == meta.sha256


async def test_a_stored_digest_is_found_by_another_files_instance(tmp_path: Path) -> None:
    """The digest is recorded in the tables, not only in memory (restart, other repo)."""
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        assert (await get(f"{h.url}/model.bin"))[0] == 200
        fresh = HfFiles(cast(HubSource, h.source), h.tables, h.blobs, Filler(h.blobs))
        assert await fresh.known_digest(meta) == meta.sha256


async def test_a_refused_scan_keeps_the_content_recorded(tmp_path: Path) -> None:
    """on_verified raising FillFailed refuses this transfer; the blob stays stored and
    recorded (never fetched twice), the policy decides on later requests."""
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        seen: list[tuple[Digest, Path, str]] = []

        async def refuse(digest: Digest, path: Path, ctx: HfFileContext) -> None:
            seen.append((digest, path, ctx.meta.path))
            raise FillFailed("unsafe pickle")

        h.files.on_verified = refuse
        h.source.gate = gate = asyncio.Event()
        with capture_logs() as logs:
            async with aiohttp.ClientSession() as s, s.get(f"{h.url}/model.bin") as r:
                gate.set()  # headers are here: the fill is attached
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
        # the scanner's own reason, not an error of the hook's bookkeeping
        assert [e["reason"] for e in logs if e["event"] == "hf_fill_failed"] == ["unsafe pickle"]
        assert meta.sha256 is not None
        assert seen == [(meta.sha256, h.blobs.blob_path(Digest(meta.sha256)), "model.bin")]
        assert await h.tables.stored_digest(meta) == meta.sha256
        await h.failed(meta)
        h.files.on_verified = None
        status, _, body = await get(f"{h.url}/model.bin")
        assert (status, body) == (200, WEIGHTS)
        assert h.source.opened == ["model.bin"]


async def test_an_accepting_scan_sees_every_new_blob_once(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        seen: list[str] = []

        async def accept(digest: Digest, path: Path, ctx: HfFileContext) -> None:
            assert await asyncio.to_thread(path.read_bytes) == WEIGHTS
            seen.append(digest)

        h.files.on_verified = accept
        assert (await get(f"{h.url}/model.bin"))[2] == WEIGHTS
        assert (await get(f"{h.url}/model.bin"))[2] == WEIGHTS
        assert seen == [meta.sha256]


async def test_an_upstream_refusal_before_any_byte_is_its_own_error(tmp_path: Path) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        h.source.refuse = UpstreamUnavailable("the hub answered 503")
        status, _, body = await get(f"{h.url}/model.bin")
        assert (status, body) == (502, b"Upstream unavailable: the hub answered 503\n")
        h.source.refuse = ConnectionRefusedError("refused")
        status, _, body = await get(f"{h.url}/model.bin")
        assert status == 502
        assert body == (
            b"Bad upstream response: acme/tiny/model.bin: upstream transfer failed: refused\n"
        )


async def test_a_full_disk_is_a_storage_error_not_the_hubs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:

        def full(*_: object, **__: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(h.blobs, "writer", full)
        with capture_logs() as logs:
            status, _, body = await get(f"{h.url}/model.bin")
        assert status == 500
        assert body == (
            b"Internal error: acme/tiny/model.bin: storage error: No space left on device\n"
        )
        [event] = [e for e in logs if e["event"] == "storage_error"]
        assert (event["ecosystem"], event["repo"], event["path"]) == (
            "hf",
            "acme/tiny",
            "model.bin",
        )
        assert event["error"] == "storage error: No space left on device"
        assert event["log_level"] == "error"
        assert not [e for e in logs if e["event"] == "hf_fill_failed"]


async def test_a_resume_after_a_cut_fill_gets_the_whole_verified_body(tmp_path: Path) -> None:
    """The cut fill sent unverified bytes; the taint is per content (the fill key), so the
    client's ``Range: bytes=N-`` into that prefix is answered with the whole body."""
    meta = lfs("model.bin", WEIGHTS)
    async with hub(tmp_path, [meta], {"model.bin": WEIGHTS}) as h:
        h.source.cut.add("model.bin")
        h.source.gate = gate = asyncio.Event()
        async with aiohttp.ClientSession() as s, s.get(f"{h.url}/model.bin") as r:
            gate.set()  # headers are here: the fill is attached
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        await h.failed(meta)
        h.source.cut.clear()
        status, _, body = await get(f"{h.url}/model.bin", {"Range": "bytes=100-"})
        assert (status, body) == (200, WEIGHTS)
        # now stored: the taint still applies to the stored blob
        status, _, body = await get(f"{h.url}/model.bin", {"Range": "bytes=100-"})
        assert (status, body) == (200, WEIGHTS)
        status, _, body = await get(f"{h.url}/model.bin", {"Range": f"bytes={BATCH + 1}-"})
        assert (status, body) == (206, WEIGHTS[BATCH + 1 :])
        assert h.source.opened == ["model.bin", "model.bin"]
