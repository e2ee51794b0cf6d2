"""The Hub source layers: upstream hub (HubClient) under a stored layer (SQLite + memory).

``HubSource`` answers repo info, revision→commit resolution, tree / paths-info pages and file
facts.  Repo info is kept per requested revision; after ``ttl`` seconds the stored info is
answered at once, marked stale, while one background request revalidates it
(stale-while-revalidate: a hanging hub never holds up stored content); when the upstream fails
it keeps being served stale (and says why).  Only info never fetched, and a ``fresh`` check
(a commit new to the mirror), wait for the hub, within its deadlines.  In offline mode only
stored data is used.  Pages and file facts of a commit never change, so they are kept without
expiry, and a commit's file facts, once recorded, are what its content is verified against
forever.

Data fetched with a client's own token is kept under that token's scope unless it is public,
and files of private or gated repos are re-authorised upstream with the caller's credentials
(at most every ``ttl`` seconds), so the mirror never hands one user's access to another.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace

import structlog

from ..errors import AirlockError, OfflineMiss, UpstreamInvalid, UpstreamUnavailable
from ..lru import SizedLru
from .errors import HubUnconfigured
from .hub_client import HubBody, HubClient, HubResponse
from .model import FileMeta, RepoInfo, RepoRef, is_commit
from .stored import HfTables
from .wire import (
    MAX_LISTING_ENTRIES,
    WireError,
    dump_json,
    load_json,
    meta_from_tree_entry,
    parse_links,
    strip_xet_json,
)

log = structlog.get_logger("airlock.hf")

MEMORY_ENTRIES = 4096
REVALIDATING = "past its TTL; answered from the store while upstream hub is asked again"


@dataclass(frozen=True, slots=True)
class Auth:
    """The credentials used upstream for one client request."""

    header: str | None  # Authorization value sent to the hub (never to a CDN)
    scope: str  # "" = shareable; else a hash of the client's own token

    @staticmethod
    def for_request(client_header: str | None, server_token: str, forward: bool) -> Auth:
        if server_token:
            return Auth(f"Bearer {server_token}", "")
        if forward and client_header:
            return Auth(client_header, hashlib.sha256(client_header.encode()).hexdigest()[:24])
        return Auth(None, "")


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes  # JSON with Xet fields removed
    next_link: str | None  # upstream-relative ("/api/…?cursor=…") or None


class HubSource:
    def __init__(
        self,
        client: HubClient | None,
        tables: HfTables,
        *,
        ttl: float,
        offline: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._tables = tables
        self._ttl = ttl
        self._offline = offline or client is None
        self._clock = clock
        self._mem: SizedLru[tuple[str, ...], tuple[RepoInfo, float]] = SizedLru(MEMORY_ENTRIES)
        self._inflight: dict[tuple[str, ...], asyncio.Future[RepoInfo]] = {}
        self._background: set[asyncio.Task[RepoInfo]] = set()
        self._failed: SizedLru[tuple[str, ...], str] = SizedLru(MEMORY_ENTRIES)  # last failure
        self._access: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self.no_upstream_reason = (
            "no upstream hub is configured: set hf.upstream (AIRLOCK_HF__UPSTREAM), or install "
            "huggingface_hub, whose default endpoint airlock uses when hf.upstream is empty"
            if client is None and not offline
            else ""
        )

    @property
    def offline(self) -> bool:
        return self._offline

    def now(self) -> float:
        """The clock ``RepoInfo.fetched_at`` is measured on."""
        return self._clock()

    def _upstream(self) -> HubClient:
        if self._client is None:
            if self.no_upstream_reason:
                raise HubUnconfigured(self.no_upstream_reason)
            raise UpstreamUnavailable("offline mode is on")
        return self._client

    def offline_miss(self, what: str) -> AirlockError:
        """What to raise for *what* when it is not stored and the hub cannot be asked: a 503
        naming the missing setting when no hub is configured, else offline mode's 404."""
        if self.no_upstream_reason:
            return HubUnconfigured(f"{what} is not in the mirror and {self.no_upstream_reason}")
        return OfflineMiss(f"{what} is not in the mirror and offline mode is on")

    # ---- repo info ---------------------------------------------------------------------------
    def _remember(self, key: tuple[str, ...], info: RepoInfo, at: float) -> None:
        self._mem.put(key, (info, at))

    async def _stored(
        self, ref: RepoRef, rev: str, query: str, scope: str
    ) -> tuple[RepoInfo, float] | None:
        key = (ref.repo_type, ref.repo_id, rev, query, scope)
        hit = self._mem.peek(key)
        if hit is not None:
            return hit
        doc = await self._tables.get_info(ref, rev, query, scope)
        if doc is None:
            return None
        try:
            body = load_json(doc.body, "stored repo info")
        except WireError:
            return None
        found = (RepoInfo(ref, body, fetched_at=doc.fetched_at), doc.fetched_at)
        self._remember(key, *found)
        return found

    async def info(
        self, ref: RepoRef, revision: str | None, query: str, auth: Auth, *, fresh: bool = False
    ) -> RepoInfo:
        """Repo info as ``/api/{type}s/{repo}[/revision/{rev}]?{query}`` answers it.

        *fresh* asks the hub now, whatever is stored (online only), and never answers stale.

        Raises:
            HubNotFound / HubRefused: the hub says no (never answered from storage).
            UpstreamUnavailable / UpstreamInvalid: it failed and nothing is stored.
            OfflineMiss: offline and not stored.
        """
        rev = revision or ""
        found = await self._stored(ref, rev, query, auth.scope)
        if found is None and auth.scope:
            shared = await self._stored(ref, rev, query, "")
            found = shared if shared is not None and shared[0].public else None
        now = self._clock()
        if found is not None and (self._offline or (now - found[1] < self._ttl and not fresh)):
            return found[0]
        if self._offline:
            raise self.offline_miss(f"repo info of {ref.key}")
        flight = (ref.repo_type, ref.repo_id, rev, query, auth.scope)
        if found is not None and not fresh:  # stale-while-revalidate
            if flight not in self._inflight:
                task = asyncio.create_task(self._flight(flight, ref, rev, query, auth, found))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return replace(found[0], stale=self._failed.peek(flight) or REVALIDATING)
        info = await self._flight(flight, ref, rev, query, auth, found)
        if fresh and info.stale is not None:
            raise UpstreamUnavailable(info.stale)
        return info

    async def _flight(
        self,
        flight: tuple[str, ...],
        ref: RepoRef,
        rev: str,
        query: str,
        auth: Auth,
        found: tuple[RepoInfo, float] | None,
    ) -> RepoInfo:
        """One fetch per key at a time: a fetch already under way is as fresh as a new one."""
        fut = self._inflight.get(flight)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[flight] = fut
        try:
            info = await self._fetch_info(ref, rev, query, auth, found)
            fut.set_result(info)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # joiners re-raise it themselves
            raise
        finally:
            del self._inflight[flight]
        if info.stale is not None:
            self._failed.put(flight, info.stale)
        else:
            self._failed.pop(flight)
        return info

    async def settled(self) -> None:
        """Wait for the background revalidations running now (tests; shutdown)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await self.settled()

    async def _fetch_info(
        self,
        ref: RepoRef,
        rev: str,
        query: str,
        auth: Auth,
        found: tuple[RepoInfo, float] | None,
    ) -> RepoInfo:
        client = self._upstream()
        parts = ("revision", _quote_rev(rev)) if rev else ()
        try:
            resp = await client.fetch("GET", client.api_url(ref, *parts, query=query), auth.header)
            body = load_json(resp.body, "repo info")
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise WireError("repo info without an id")
        except WireError as e:
            failure: UpstreamInvalid | UpstreamUnavailable = UpstreamInvalid(str(e))
        except (UpstreamUnavailable, UpstreamInvalid) as e:
            failure = e
        else:
            now = self._clock()
            info = RepoInfo(ref, strip_xet_json(body), fetched_at=now)
            scope = "" if info.public else auth.scope
            await self._tables.put_info(ref, rev, query, scope, dump_json(info.body), now)
            self._remember((ref.repo_type, ref.repo_id, rev, query, scope), info, now)
            return info
        if found is None:
            raise failure
        return replace(found[0], stale=failure.message)

    async def commit_for(
        self, ref: RepoRef, revision: str, auth: Auth
    ) -> tuple[str, RepoInfo | None]:
        """The commit a revision resolves to (a full sha resolves to itself)."""
        if is_commit(revision):
            return revision, None
        info = await self.info(ref, revision, "", auth)
        if info.sha is None:
            raise UpstreamInvalid(f"the hub resolved {revision!r} of {ref.key} to no commit")
        return info.sha, info

    # ---- file facts --------------------------------------------------------------------------
    async def file_meta(
        self, ref: RepoRef, commit: str, path: str, auth: Auth, *, restricted: bool
    ) -> FileMeta:
        """Size and hashes of a file at a commit; *restricted* repos re-check access upstream.

        Raises:
            HubNotFound: no such revision or file.  HubRefused: no access.
            OfflineMiss / UpstreamUnavailable / UpstreamInvalid.
        """
        meta = await self._tables.get_file(ref, commit, path)
        access_key = (auth.scope, ref.repo_type, ref.repo_id, commit, path)
        now = self._clock()
        granted = self._access.get(access_key)
        if meta is not None and (
            not restricted or (granted is not None and now - granted < self._ttl)
        ):
            return meta
        if self._offline:
            raise self.offline_miss(f"{ref.key}/{path} at {commit[:12]}")
        fetched = await self._upstream().head_file(ref, commit, path, auth.header)
        if restricted:
            self._access[access_key] = now
            while len(self._access) > MEMORY_ENTRIES:
                self._access.popitem(last=False)
        if meta is None:
            await self._tables.add_files(ref, commit, [fetched])
            return fetched
        return meta  # recorded facts win: a commit's content never changes

    # ---- pages of a commit -------------------------------------------------------------------
    async def page(
        self,
        ref: RepoRef,
        commit: str,
        key: str,
        scope: str,
        fetch: Callable[[HubClient], Awaitable[HubResponse]],
    ) -> Page:
        """A tree or paths-info page of a commit: stored forever once fetched."""
        doc = await self._tables.get_page(ref, scope, key)
        if doc is not None:
            return Page(doc.body, doc.link)
        if self._offline:
            raise self.offline_miss(f"listing of {ref.key} at {commit[:12]}")
        client = self._upstream()
        resp = await fetch(client)
        try:
            value = load_json(resp.body, "listing")
        except WireError as e:
            raise UpstreamInvalid(str(e)) from e
        if not isinstance(value, list):
            raise UpstreamInvalid("listing is not a JSON array")
        if len(value) > MAX_LISTING_ENTRIES:
            message = (
                f"the hub's listing of {ref.key} at {commit[:12]} has {len(value)} entries, "
                f"more than the limit of {MAX_LISTING_ENTRIES} in one document"
            )
            log.warning("upstream_listing_refused", repo=ref.key, commit=commit, error=message)
            raise UpstreamInvalid(message)
        body = dump_json(strip_xet_json(value))
        link = None
        for url, rel in parse_links(resp.headers.get("Link", "")):
            if rel == "next" and url.startswith(client.base + "/"):
                link = url[len(client.base) :]
        metas = [m for m in map(meta_from_tree_entry, value) if m is not None]
        await self._tables.add_files(ref, commit, metas)
        await self._tables.put_page(ref, scope, key, body, link)
        return Page(body, link)

    def open_file(
        self, ref: RepoRef, commit: str, meta: FileMeta, auth: Auth
    ) -> AbstractAsyncContextManager[HubBody]:
        """The upstream body of one file (for a fill); the token goes to the hub only."""
        return self._upstream().open_file(ref, commit, meta, auth.header)


def _quote_rev(rev: str) -> str:
    from urllib.parse import quote

    return quote(rev, safe="")
