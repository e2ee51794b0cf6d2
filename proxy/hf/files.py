"""Hub file bytes: HEAD from recorded facts, GET from the store or one single-flight fill.

LFS files are verified against their sha256, regular files against their git blob sha1 and
size; both are stored by sha256.  Every fill passes through ``on_verified`` (after the blob is
verified and published, before any client gets its last byte): a later feature scans model
files there, once per content, and raising ``FillFailed`` refuses this transfer: the content
is still recorded (never fetched twice) and the policy decides on every later request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from mirror_store.blobs import BlobStore
from mirror_store.digest import GIT_BLOB_SHA1, Digest
from mirror_store.fill import Fill, Filler, FillFailed, StorageFailed

from ..errors import AirlockError, UpstreamInvalid
from ..lru import SizedLru
from ..serving import send_blob, send_fill
from ..trust.attest_served import OnServed, notify_served
from .model import FileMeta, RepoRef
from .sources import Auth, HubSource
from .stored import HfTables
from .wire import file_headers, text_type

log = structlog.get_logger("airlock.hf")
MEMORY_DIGESTS = 65536


@dataclass(frozen=True, slots=True)
class HfFileContext:
    """The file a request resolved to (after the policy allowed it)."""

    repo: RepoRef  # canonical repo
    commit: str
    meta: FileMeta
    auth: Auth  # credentials of the request that resolved it


OnVerified = Callable[[Digest, Path, HfFileContext], Awaitable[None]]


class HfFiles:
    def __init__(
        self, source: HubSource, tables: HfTables, blobs: BlobStore, filler: Filler
    ) -> None:
        self._source = source
        self._tables = tables
        self._blobs = blobs
        self._filler = filler
        self._digests: SizedLru[str, Digest] = SizedLru(MEMORY_DIGESTS)
        # Awaited for every new blob before it is recorded or fully served (scanning hook).
        self.on_verified: OnVerified | None = None

    def _remember(self, meta: FileMeta, digest: Digest) -> None:
        self._digests.put(meta.content_key, digest)

    async def known_digest(self, meta: FileMeta) -> Digest | None:
        digest = self._digests.peek(meta.content_key)
        if digest is None:
            digest = await self._tables.stored_digest(meta)
            if digest is not None:
                self._remember(meta, digest)
        return digest

    @staticmethod
    def headers(ctx: HfFileContext) -> dict[str, str]:
        return file_headers(ctx.meta, ctx.commit, text_type(ctx.meta.path))

    def head(self, ctx: HfFileContext) -> web.Response:
        """Answered from the recorded facts: no body is fetched for a HEAD."""
        headers = self.headers(ctx)
        headers["Content-Length"] = str(ctx.meta.size)
        return web.Response(status=200, headers=headers)

    async def get(
        self, request: web.Request, ctx: HfFileContext, on_served: OnServed | None = None
    ) -> web.StreamResponse:
        """The file's bytes; *on_served* learns the digest (or the fill) of a body sent."""
        content_type = text_type(ctx.meta.path)
        headers = self.headers(ctx)
        headers.pop("ETag")  # send_blob/send_fill set the sha256 as the strong ETag
        digest = await self.known_digest(ctx.meta)
        tainted = self._filler.tainted_upto(_fill_key(ctx.meta))
        if digest is not None:
            try:
                resp = await send_blob(
                    request,
                    self._blobs.blob_path(digest),
                    digest,
                    content_type,
                    headers,
                    tainted,
                )
            except FileNotFoundError:  # quarantined or collected since: fetch it again
                self._digests.pop(ctx.meta.content_key)
                await self._tables.forget_digest(digest)
            else:
                notify_served(request, resp, on_served, digest)
                return resp
        if self._source.offline:
            raise self._source.offline_miss(f"{ctx.repo.key}/{ctx.meta.path}")
        fill = self._start(ctx)
        hint = ctx.meta.sha256 if ctx.meta.lfs else None
        try:
            streamed = await send_fill(request, fill, hint, content_type, headers, tainted)
            if streamed is not None:
                notify_served(request, streamed, on_served, fill)  # nothing if the fill failed
                return streamed
            digest = await fill.wait_finished()
        except FillFailed as e:
            raise _fill_error(ctx, e) from e
        path = await asyncio.to_thread(self._blobs.path, digest)
        if path is None:
            raise UpstreamInvalid(f"{ctx.meta.path} vanished from the store")
        tainted = self._filler.tainted_upto(_fill_key(ctx.meta))  # this fill may have failed
        resp = await send_blob(request, path, digest, content_type, headers, tainted)
        notify_served(request, resp, on_served, digest)
        return resp

    def _start(self, ctx: HfFileContext) -> Fill:
        meta = ctx.meta
        if meta.lfs:
            assert meta.sha256 is not None
            expected = {"sha256": meta.sha256}
        else:
            assert meta.blob_sha1 is not None
            expected = {GIT_BLOB_SHA1: meta.blob_sha1}

        async def on_commit(digest: Digest) -> None:
            try:
                if self.on_verified is not None:
                    await self.on_verified(digest, self._blobs.blob_path(digest), ctx)
            except FillFailed:
                # Refused (quarantined) content stays stored and recorded, so it is never
                # fetched twice; serving it is the policy's decision on the next request.
                await self._tables.set_digest(ctx.repo, ctx.commit, meta, digest)
                self._remember(meta, digest)
                raise
            await self._tables.set_digest(ctx.repo, ctx.commit, meta, digest)
            self._remember(meta, digest)

        def on_fail(e: FillFailed) -> None:
            if isinstance(e, StorageFailed):  # this server's disk, not the hub's bytes
                log.error(
                    "storage_error",
                    ecosystem="hf",
                    repo=ctx.repo.key,
                    path=meta.path,
                    error=e.reason,
                )
                return
            log.warning(
                "hf_fill_failed",
                repo=ctx.repo.key,
                commit=ctx.commit,
                path=meta.path,
                reason=e.reason,
            )

        return self._filler.start(
            _fill_key(meta),
            lambda: self._source.open_file(ctx.repo, ctx.commit, meta, ctx.auth),
            expected,
            meta.size,
            on_commit,
            on_fail,
        )


def _fill_key(meta: FileMeta) -> str:
    """One fill, and one taint record, per content (LFS sha256 or git blob sha1)."""
    return f"hf:{meta.content_key}"


def _fill_error(ctx: HfFileContext, e: FillFailed) -> AirlockError:
    if isinstance(e, StorageFailed):
        return AirlockError(f"{ctx.repo.key}/{ctx.meta.path}: {e.reason}")
    if isinstance(e.cause, AirlockError):
        return e.cause
    return UpstreamInvalid(f"{ctx.repo.key}/{ctx.meta.path}: {e.reason}")
