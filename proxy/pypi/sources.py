"""The PyPI source chain: ``PolicyIndex(StoredIndex(UpstreamIndex(clients), store), engine)``.

Each layer answers ``project(name)`` with a ProjectPage.  The upstream layer asks the
configured indexes in order (the first that has the project wins); the stored layer keeps the
last good page and, after a TTL, answers it at once while it is revalidated in the background
with the upstream's validators (stale-while-revalidate: a hanging upstream never holds up what
is stored, and the answer says it is stale); when the upstream fails the last good page keeps
being served (and says why); only a page never fetched waits for the upstream, within its
deadlines.  Offline mode serves only what is stored.  The policy layer is outermost, so a new
policy covers already-mirrored content without a re-fetch, and decides on the page served.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from mirror_store.metadata import MetadataStore, PageRecord

from ..errors import NotFound, OfflineMiss, UpstreamInvalid, UpstreamUnavailable
from ..lru import SizedLru
from ..settings import UpstreamSettings
from ..upstream import UpstreamClient
from .model import ProjectDetail, ProjectList
from .wire import UPSTREAM_ACCEPT, WireError, parse_json, parse_page, render_json

log = structlog.get_logger("airlock.pypi")

ECOSYSTEM = "pypi"
STALE_RETRY = 10.0  # seconds between upstream retries while serving a stale page


@dataclass(frozen=True, slots=True)
class ProjectPage:
    detail: ProjectDetail
    upstream: str  # name of the upstream the page came from
    fetched_at: float
    stale: str | None = None  # why it is answered stale (revalidation pending or failed)
    checked_at: float = 0.0  # when a stale page last tried its upstream
    internal_errors: tuple[str, ...] = ()  # internal indexes that could not be asked
    previously_internal: bool = False  # an internal index served this name before
    content_id: str = ""  # sha256 of the stored page: decisions are cached by content


class Index(Protocol):
    async def project(self, name: str) -> ProjectPage:
        """The project page for a canonical name.

        Raises:
            NotFound: no upstream has it (OfflineMiss in offline mode).
            UpstreamUnavailable / UpstreamInvalid: it could not be fetched and nothing is stored.
        """

    async def list_projects(self) -> ProjectList: ...


@dataclass(frozen=True, slots=True)
class _Fetched:
    page: ProjectPage | None  # None: not modified since the stored record
    record: PageRecord | None


class UpstreamIndex:
    """Asks the upstreams: every ``internal`` one first, then the ``public`` ones, each kind in
    configured order; the first that has the project wins.

    Dependency confusion: a project an internal index has is never taken from a public one.
    If an internal index cannot be asked, a public answer is marked (``internal_errors``) for
    the policy to judge, and a project that came from an internal index before is never
    replaced by a public one (``previously_internal``).
    """

    def __init__(
        self,
        upstreams: Sequence[tuple[UpstreamSettings, UpstreamClient]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstreams = [u for u in upstreams if u[0].kind == "internal"] + [
            u for u in upstreams if u[0].kind != "internal"
        ]
        self.kinds = {s.name: s.kind for s, _ in upstreams}
        self._clock = clock

    async def fetch(self, name: str, stored: PageRecord | None) -> _Fetched:
        errors: list[str] = []
        internal_errors: list[str] = []
        timeouts = True  # every upstream that failed timed out: a 504, else a 502
        was_internal = stored is not None and self.kinds.get(stored.upstream) == "internal"
        for settings, client in self._upstreams:
            url = f"{settings.url.rstrip('/')}/{name}/"
            same = stored is not None and stored.upstream == settings.name
            try:
                resp = await client.get_page(
                    url,
                    UPSTREAM_ACCEPT,
                    etag=stored.etag if same and stored else None,
                    last_modified=stored.last_modified if same and stored else None,
                )
            except NotFound:
                continue
            except (UpstreamUnavailable, UpstreamInvalid) as e:
                (internal_errors if settings.kind == "internal" else errors).append(e.message)
                timeouts = timeouts and e.status == 504
                continue
            now = self._clock()
            if resp.status == 304:
                return _Fetched(None, None)
            try:
                detail = parse_page(name, resp.body, resp.content_type, resp.url)
            except WireError as e:
                log.warning(
                    "upstream_page_refused", upstream=settings.name, project=name, error=str(e)
                )
                errors.append(f"upstream {settings.name}: {e}")
                timeouts = False
                continue
            detail = _servable(detail, settings.name)
            if settings.kind == "public" and not detail.tracks:
                detail = replace(detail, tracks=(url,))  # PEP 708: this page mirrors that one
            record = PageRecord(
                settings.name, render_json(detail), resp.etag, resp.last_modified, now
            )
            page = ProjectPage(
                detail,
                settings.name,
                now,
                internal_errors=tuple(internal_errors) if settings.kind == "public" else (),
                previously_internal=was_internal and settings.kind == "public",
                content_id=_content_id(record.body),
            )
            return _Fetched(page, record)
        if errors or internal_errors:
            raise UpstreamUnavailable("; ".join(internal_errors + errors), timeout=timeouts)
        raise NotFound(f"project '{name}' does not exist on any upstream")

    async def list_projects(self) -> ProjectList:
        return ProjectList(())


def _content_id(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _page_from_record(
    name: str, rec: PageRecord, stale: str | None = None, checked_at: float = 0.0
) -> ProjectPage:
    detail = parse_json(name, rec.body, "")
    return ProjectPage(
        detail, rec.upstream, rec.fetched_at, stale, checked_at, content_id=_content_id(rec.body)
    )


class StoredIndex:
    """Keeps the last good page per project; after ``ttl`` seconds answers it at once and
    revalidates it in the background (one revalidation per project at a time)."""

    def __init__(
        self,
        upstream: UpstreamIndex,
        meta: MetadataStore,
        *,
        ttl: float,
        offline: bool,
        clock: Callable[[], float] = time.time,
        memory_pages: int = 4096,
        memory_files: int = 250_000,
    ) -> None:
        self._upstream = upstream
        self._meta = meta
        self._ttl = ttl
        self._offline = offline
        self._clock = clock
        self._mem: SizedLru[str, ProjectPage] = SizedLru(
            memory_pages, max_size=memory_files, size=lambda p: len(p.detail.files)
        )
        self._inflight: dict[str, asyncio.Future[ProjectPage]] = {}
        self._revalidating: dict[str, asyncio.Task[None]] = {}
        self.kinds = upstream.kinds

    def _remember(self, name: str, page: ProjectPage) -> ProjectPage:
        return self._mem.put(name, page)

    async def project(self, name: str) -> ProjectPage:
        page = self._mem.get(name)
        if page is not None:
            now = self._clock()
            if page.stale is None and (self._offline or now - page.fetched_at < self._ttl):
                return page
            if page.stale is not None and now - page.checked_at < STALE_RETRY:
                return page
            return self._while_revalidating(name, page)
        fut = self._inflight.get(name)
        if fut is not None:  # single-flight: join the load already under way
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[name] = fut
        try:
            page = await self._load(name)
            fut.set_result(page)
            return page
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: joiners re-raise it themselves
            raise
        finally:
            del self._inflight[name]

    async def _load(self, name: str) -> ProjectPage:
        rec = await self._meta.get_page(ECOSYSTEM, name)
        now = self._clock()
        if rec is not None and (self._offline or now - rec.fetched_at < self._ttl):
            return self._remember(name, _page_from_record(name, rec))
        if self._offline:
            raise OfflineMiss(f"project '{name}' is not in the mirror and offline mode is on")
        if rec is not None:  # stored, past its TTL: answer it now, revalidate meanwhile
            return self._while_revalidating(
                name, self._remember(name, _page_from_record(name, rec))
            )
        return await self._revalidate(name, None)  # never fetched: wait (within deadlines)

    def _while_revalidating(self, name: str, page: ProjectPage) -> ProjectPage:
        """*page* answered at once, marked stale; a background task revalidates it."""
        if name not in self._revalidating:
            task = asyncio.create_task(self._background(name))
            self._revalidating[name] = task
        if page.stale is not None:  # the last attempt failed: say why
            return page
        return replace(
            page,
            stale=f"past its TTL; answered from the store while upstream {page.upstream} "
            "is asked again",
        )

    async def _background(self, name: str) -> None:
        try:
            await self._revalidate(name, await self._meta.get_page(ECOSYSTEM, name))
        except Exception as e:  # the page keeps being served; the log says why
            log.warning("page_revalidation_failed", project=name, error=str(e))
        finally:
            del self._revalidating[name]

    async def _revalidate(self, name: str, rec: PageRecord | None) -> ProjectPage:
        now = self._clock()
        try:
            fetched = await self._upstream.fetch(name, rec)
        except (UpstreamUnavailable, UpstreamInvalid) as e:
            if rec is None:
                raise
            stale = f"upstream failed, serving last good page: {e.message}"
            return self._remember(name, _page_from_record(name, rec, stale, now))
        if fetched.page is None:  # 304: the stored page is still current
            assert rec is not None
            now = self._clock()
            await self._meta.touch_page(ECOSYSTEM, name, now)
            known = self._mem.peek(name)
            if known is not None:  # keep the parsed object: its identity keys later caches
                return self._remember(name, replace(known, fetched_at=now, stale=None))
            return self._remember(name, _page_from_record(name, replace(rec, fetched_at=now)))
        assert fetched.record is not None
        await self._meta.put_page(ECOSYSTEM, name, fetched.record)
        return self._remember(name, fetched.page)

    async def settled(self) -> None:
        """Wait for the background revalidations running now (tests; shutdown)."""
        while self._revalidating:
            await asyncio.gather(*self._revalidating.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._revalidating.values()):
            task.cancel()
        await self.settled()

    async def list_projects(self) -> ProjectList:
        return ProjectList(tuple(await self._meta.page_names(ECOSYSTEM)))


# what serving.safe_component refuses in a file name, as one search (pages list 10,000s of files)
_UNSERVABLE = re.compile(r"[\x00-\x1f\x7f/\\]")


def _servable(detail: ProjectDetail, upstream: str) -> ProjectDetail:
    """The page without files whose names no download could ever ask for (``/``, ``\\``, NUL,
    control characters, ``..``, over 255 characters: the files route refuses them all), so a
    client never picks one (a trick name can parse as a newer version) and fails on it."""
    bad = [
        f.filename
        for f in detail.files
        if not 0 < len(f.filename) <= 255
        or f.filename in (".", "..")
        or _UNSERVABLE.search(f.filename)
    ]
    if not bad:
        return detail
    log.warning(
        "upstream_files_skipped",
        upstream=upstream,
        project=detail.name,
        count=len(bad),
        names=[repr(n[:80]) for n in bad[:10]],
        reason="file name is not a valid name (path separator, NUL, control character, "
        "'..' or over 255 characters)",
    )
    skipped = set(bad)
    return replace(detail, files=tuple(f for f in detail.files if f.filename not in skipped))
