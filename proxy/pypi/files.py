"""Downloads: distribution files, their ``.metadata`` and provenance, through the policy point.

A file is served from the store when its verified blob is there; otherwise one single-flight
fill streams it from the upstream to every waiting client while it is hashed into the store.
Only a file the index gave a verifiable hash for is ever fetched.  For a stored wheel whose
upstream offers no PEP 658 metadata, the metadata is extracted from the wheel and served
(and advertised on the page) with its own sha256.
"""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import structlog
from aiohttp import web

from mirror_store.blobs import BlobStore
from mirror_store.digest import Digest, verifiable_hashes
from mirror_store.fill import Fill, Filler, FillFailed, StorageFailed
from mirror_store.metadata import FileRecord, MetadataStore

from ..decision import Client, Decision, Reason, Subject
from ..egress.guard import EgressDenied
from ..errors import AirlockError, NotFound, OfflineMiss, UpstreamInvalid, UpstreamUnavailable
from ..logging import log_decision
from ..lru import SizedLru
from ..serving import send_blob, send_fill
from ..trust.attest_served import OnServed, notify_served, pypi_hook
from ..upstream import UpstreamClient
from .filefacts import file_facts
from .model import File
from .policy import PolicyIndex
from .sources import ECOSYSTEM

MAX_METADATA = 16 * 1024 * 1024
MAX_PROVENANCE = 4 * 1024 * 1024
OCTET = "application/octet-stream"
log = structlog.get_logger("airlock.store")
METADATA_TYPE = "text/plain; charset=utf-8"
MEMORY_DIGESTS = 65536  # (project, file) -> digest of verified blobs kept in memory


def extract_wheel_metadata(path: Path) -> bytes | None:
    """The wheel's ``*.dist-info/METADATA`` (bounded), or None if it has none."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [
                n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) != 1:
                return None
            info = zf.getinfo(names[0])
            if info.file_size > MAX_METADATA:
                return None
            return zf.read(info)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None


def _taint_key(project: str, filename: str) -> str:
    """A file as clients ask for it (whatever upstream served it): the key of its taint."""
    return f"pypi:{project}/{filename}"


class PypiFiles:
    def __init__(
        self,
        index: PolicyIndex,
        meta: MetadataStore,
        blobs: BlobStore,
        filler: Filler,
        clients: dict[str, UpstreamClient],
        offline: bool,
    ) -> None:
        self._index = index
        self._meta = meta
        self._blobs = blobs
        self._filler = filler
        self._clients = clients
        self._offline = offline
        self._synth_lock = asyncio.Lock()
        # Hot-path memory: verified digests by (project, file name), and per project the
        # metadata synthesised from stored wheels (loaded once from the metadata store).
        self._digests: SizedLru[tuple[str, str], Digest] = SizedLru(MEMORY_DIGESTS)
        self._synth: dict[str, dict[str, Digest]] = {}
        self._tasks: set[asyncio.Task[Digest | None]] = set()  # metadata extractions running

    async def stored_path(self, digest: Digest | None) -> Path | None:
        return None if digest is None else await asyncio.to_thread(self._blobs.path, digest)

    async def synthesized_metadata(self, project: str) -> dict[str, Digest]:
        """filename -> sha256 of metadata we can serve for files the upstream gave none for.

        The returned mapping is replaced (never mutated) when it changes, so its identity can
        key a render cache.
        """
        synth = self._synth.get(project)
        if synth is None:
            stored = await self._meta.files_with_digest(ECOSYSTEM, project)
            synth = {
                n.removesuffix(".metadata"): d for n, d in stored.items() if n.endswith(".metadata")
            }
            self._synth[project] = synth
        return synth

    def _remember(self, project: str, filename: str, digest: Digest) -> None:
        self._digests.put((project, filename), digest)

    async def _send_stored(
        self, request: web.Request, project: str, filename: str, content_type: str
    ) -> web.StreamResponse | None:
        """Serve from the store if we know a verified blob for this file; else None."""
        digest = self._digests.peek((project, filename))
        if digest is None:
            rec = await self._meta.get_file(ECOSYSTEM, project, filename)
            if rec is None or not rec.digest:
                return None
            digest = rec.digest
        try:
            resp = await send_blob(
                request,
                self._blobs.blob_path(digest),
                digest,
                content_type,
                tainted_upto=self._filler.tainted_upto(_taint_key(project, filename)),
            )
        except FileNotFoundError:  # quarantined or collected since: fetch again
            self._digests.pop((project, filename))
            return None
        self._remember(project, filename, digest)
        return resp

    def _verification_failed(self, subject: Subject, e: FillFailed) -> None:
        if isinstance(e.cause, EgressDenied):
            return  # the egress guard logged this refusal as its decision event
        if isinstance(e, StorageFailed):  # this server's disk, not the upstream's bytes
            log.error(
                "storage_error",
                ecosystem=subject.ecosystem,
                project=subject.project,
                upstream=subject.upstream,
                file=subject.files[0].filename if subject.files else None,
                error=e.reason,
            )
            return
        decision = Decision(allow=False, reasons=(Reason("verification", e.reason),))
        log_decision(subject, decision, outcome="deny")

    def _start_fill(
        self,
        upstream: str,
        project: str,
        f: File,
        url: str,
        expected: dict[str, str],
        size: int | None,
        record_as: str,
        client: Client,
    ) -> Fill:
        if not expected:
            raise UpstreamInvalid(f"upstream gave no verifiable hash for {f.filename}; refusing")
        upstream_client = self._clients.get(upstream)
        if upstream_client is None:
            raise UpstreamUnavailable(f"upstream {upstream!r} is no longer configured")

        async def on_commit(digest: Digest) -> None:
            await self._meta.upsert_file(
                ECOSYSTEM, project, FileRecord(record_as, url, expected, size, digest)
            )
            self._remember(project, record_as, digest)

        subject = Subject("pypi", "file", project, upstream, client, (file_facts(f),))
        return self._filler.start(
            f"pypi:{upstream}:{project}/{record_as}",
            lambda: upstream_client.open_file(url),
            expected,
            size,
            on_commit,
            lambda e: self._verification_failed(subject, e),
            taint_key=_taint_key(project, record_as),
        )

    @staticmethod
    def _fill_error(record_as: str, e: FillFailed) -> Exception:
        if isinstance(e, StorageFailed):
            return AirlockError(f"{record_as}: {e.reason}")
        if isinstance(e.cause, NotFound):
            return NotFound(f"{record_as}: {e.cause.message}")
        if isinstance(e.cause, EgressDenied):
            return EgressDenied(f"{record_as}: {e.cause.message}")
        return UpstreamInvalid(f"{record_as}: {e.reason}")

    async def _fill(
        self,
        request: web.Request,
        upstream: str,
        project: str,
        f: File,
        url: str,
        expected: dict[str, str],
        size: int | None,
        record_as: str,
        client: Client,
        content_type: str,
        on_served: OnServed | None = None,
    ) -> web.StreamResponse:
        fill = self._start_fill(upstream, project, f, url, expected, size, record_as, client)
        tainted = self._filler.tainted_upto(_taint_key(project, record_as))
        try:
            resp = await send_fill(
                request, fill, expected.get("sha256"), content_type, tainted_upto=tainted
            )
            if resp is not None:
                notify_served(request, resp, on_served, fill)
                return resp
            digest = await fill.wait_finished()
        except FillFailed as e:
            raise self._fill_error(record_as, e) from e
        path = await self.stored_path(digest)
        if path is None:
            raise UpstreamInvalid(f"{record_as} vanished from the store")
        tainted = self._filler.tainted_upto(_taint_key(project, record_as))
        resp = await send_blob(request, path, digest, content_type, tainted_upto=tainted)
        notify_served(request, resp, on_served, digest)
        return resp

    async def serve_file(
        self, request: web.Request, project: str, filename: str, client: Client
    ) -> web.StreamResponse:
        page, f, decision = await self._index.file(project, filename, client)
        on_served = pypi_hook(request, page.upstream, project, filename, client, decision)
        stored = await self._send_stored(request, project, filename, OCTET)
        if stored is not None:
            notify_served(request, stored, on_served, self._digests[(project, filename)])
            return stored
        if self._offline:
            raise OfflineMiss(f"{filename} is not in the mirror and offline mode is on")
        expected = verifiable_hashes(f.hashes)
        if request.method == "HEAD":  # answer from the index, without fetching the file
            headers = {"Content-Type": OCTET}
            if f.size is not None:
                headers["Content-Length"] = str(f.size)
            return web.Response(status=200, headers=headers)
        resp = await self._fill(
            request,
            page.upstream,
            project,
            f,
            f.url,
            expected,
            f.size,
            filename,
            client,
            OCTET,
            on_served,
        )
        if filename.endswith(".whl") and f.core_metadata is False:
            task = asyncio.create_task(self._synthesize(project, filename))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return resp

    def _done(self, task: asyncio.Task[Digest | None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed extraction only means no metadata is offered

    async def settled(self) -> None:
        """Wait until the metadata extractions started so far have finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _synthesize(self, project: str, filename: str) -> Digest | None:
        """Extract and store METADATA of a stored wheel; return its digest."""
        async with self._synth_lock:
            meta_name = filename + ".metadata"
            existing = await self._meta.get_file(ECOSYSTEM, project, meta_name)
            if existing is not None and existing.digest and await self.stored_path(existing.digest):
                return existing.digest
            rec = await self._meta.get_file(ECOSYSTEM, project, filename)
            path = await self.stored_path(rec.digest if rec else None)
            if path is None:
                return None
            data = await asyncio.to_thread(extract_wheel_metadata, path)
            if data is None:
                return None

            def store() -> Digest:
                w = self._blobs.writer({}, len(data))
                w.write(data)
                return w.commit()

            digest = await asyncio.to_thread(store)
            await self._meta.upsert_file(
                ECOSYSTEM, project, FileRecord(meta_name, "", {"sha256": digest}, len(data), digest)
            )
            synth = await self.synthesized_metadata(project)
            self._synth[project] = {**synth, filename: digest}
            return digest

    async def serve_metadata(
        self, request: web.Request, project: str, filename: str, client: Client
    ) -> web.StreamResponse:
        page, f, _ = await self._index.file(project, filename, client, action="metadata")
        meta_name = filename + ".metadata"
        stored = await self._send_stored(request, project, meta_name, METADATA_TYPE)
        if stored is not None:
            return stored
        upstream_hashes = (
            verifiable_hashes(f.core_metadata) if isinstance(f.core_metadata, dict) else {}
        )
        if upstream_hashes and not self._offline:
            return await self._fill(
                request,
                page.upstream,
                project,
                f,
                f.url + ".metadata",
                upstream_hashes,
                None,
                meta_name,
                client,
                METADATA_TYPE,
            )
        if not filename.endswith(".whl"):
            raise NotFound(f"no metadata is available for {filename}")
        # No verifiable upstream metadata: take it from the (verified) wheel itself.
        wheel = await self._meta.get_file(ECOSYSTEM, project, filename)
        if (wheel is None or not wheel.digest) and self._offline:
            raise OfflineMiss(f"{filename} is not in the mirror and offline mode is on")
        if wheel is None or not wheel.digest or not await self.stored_path(wheel.digest):
            fill = self._start_fill(
                page.upstream,
                project,
                f,
                f.url,
                verifiable_hashes(f.hashes),
                f.size,
                filename,
                client,
            )
            try:
                await fill.wait_finished()
            except FillFailed as e:
                raise self._fill_error(filename, e) from e
        digest = await self._synthesize(project, filename)
        path = await self.stored_path(digest)
        if digest is None or path is None:
            raise NotFound(f"{filename} has no readable METADATA")
        return await send_blob(request, path, digest, METADATA_TYPE)

    async def serve_provenance(self, project: str, filename: str, client: Client) -> web.Response:
        """PEP 740 provenance: passed through from the upstream (it is signed by its issuer)."""
        page, f, _ = await self._index.file(project, filename, client, action="metadata")
        if not f.provenance:
            raise NotFound(f"the upstream publishes no provenance for {filename}")
        if self._offline:
            raise OfflineMiss("provenance is not mirrored and offline mode is on")
        upstream_client = self._clients.get(page.upstream)
        if upstream_client is None:
            raise UpstreamUnavailable(f"upstream {page.upstream!r} is no longer configured")
        resp = await upstream_client.get_page(f.provenance, "application/json")
        if len(resp.body) > MAX_PROVENANCE:
            raise UpstreamInvalid("provenance document too large")
        return web.Response(body=resp.body, content_type="application/json")
