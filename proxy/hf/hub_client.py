"""HubClient: the only code that talks to the upstream hub (and, after its redirects, a CDN).

Uses the app's injected ``aiohttp.ClientSession``.  Redirects are followed here, never by
clients, and by hand: the token goes only to the configured hub's origin and is dropped for
any other origin (a CDN).  Status codes become the core error tree (``raise … from e``), with
the hub's ``X-Error-Code`` kept so clients get the same exception class through the mirror.
A file body resumes with ``Range`` when the upstream cuts it, so a flaky CDN costs a reconnect,
not a failed download.  Every request is bounded by the hub's deadlines and counted on its
circuit breaker (``upstream_limits``): while it is open the hub is not asked (``CircuitOpen``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
import structlog
from multidict import CIMultiDict
from yarl import URL

from ..egress.guard import EgressDenied, EgressRefused, redact
from ..egress.redirects import RedirectChain, guard_of
from ..errors import UpstreamInvalid, UpstreamUnavailable
from ..upstream import USER_AGENT, describe
from ..upstream_limits import (
    CircuitBreaker,
    UpstreamLimits,
    client_timeout,
)
from .errors import ENTRY_NOT_FOUND, REPO_NOT_FOUND, HubNotFound, HubRefused
from .model import FileMeta, RepoRef, is_commit, is_sha256
from .wire import MAX_JSON, int_header, unquote_etag

log = structlog.get_logger("airlock.hf")
MAX_REDIRECTS = 5
MAX_RESUMES = 3
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class HubResponse:
    status: int
    body: bytes
    headers: CIMultiDict[str]
    url: str  # final URL


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class HubClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        limits: UpstreamLimits | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._session = session
        self.base = base_url.rstrip("/")
        self._origin = origin(self.base)
        self.timeout = timeout  # the read gap
        self._limits = limits or UpstreamLimits()
        self.breaker = breaker or CircuitBreaker("hub", self._limits)

    # ---- URLs --------------------------------------------------------------------------------
    def api_url(self, ref: RepoRef, *parts: str, query: str = "") -> str:
        tail = "".join(f"/{p}" for p in parts)
        url = f"{self.base}/api/{ref.api_type}/{ref.repo_id}{tail}"
        return f"{url}?{query}" if query else url

    def file_url(self, ref: RepoRef, commit: str, path: str) -> str:
        return f"{self.base}/{ref.url_prefix}{ref.repo_id}/resolve/{commit}/{quote(path, safe='/')}"

    def _describe(self, url: str) -> str:
        return url[len(self.base) :] if url.startswith(self.base) else urlsplit(url).path

    # ---- transport -----------------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        url: str,
        auth: str | None,
        *,
        headers: Mapping[str, str] | None = None,
        data: object = None,
        follow: bool | str = True,
    ) -> aiohttp.ClientResponse:
        """One request with redirects handled here.  ``follow="same-origin"`` stops at a
        redirect to another origin (its headers carry the hub's file metadata).

        Raises:
            CircuitOpen: the hub's circuit is open; nothing was sent.
        """
        probe = self.breaker.admit()
        try:
            resp = await self._hops(method, url, auth, headers, data, follow)
        except EgressDenied:
            self.breaker.abandoned(probe)  # refused before asking: says nothing of health
            raise
        except UpstreamUnavailable as e:
            self.breaker.failure(e.message)
            raise
        except BaseException:
            self.breaker.abandoned(probe)
            raise
        if resp.status >= 500 or resp.status == 429:
            self.breaker.failure(f"answered {resp.status}")
        else:
            self.breaker.success()
        return resp

    async def _hops(
        self,
        method: str,
        url: str,
        auth: str | None,
        headers: Mapping[str, str] | None,
        data: object,
        follow: bool | str,
    ) -> aiohttp.ClientResponse:
        timeout = client_timeout(self._limits, self.timeout)
        chain = RedirectChain(url, guard_of(self._session), MAX_REDIRECTS)
        while True:
            sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
            if auth and origin(url) == self._origin:
                sent["Authorization"] = auth  # never to a CDN or any other origin
            try:
                async with asyncio.timeout(self._limits.first_byte):
                    resp = await self._session.request(
                        method,
                        URL(url, encoded=True),
                        headers=sent,
                        data=data,
                        allow_redirects=False,
                        auto_decompress=False,
                        timeout=timeout,
                    )
                location = resp.headers.get("Location")
                if resp.status not in _REDIRECTS or not location or not follow:
                    return resp
                target = urljoin(url, location)
                if follow == "same-origin" and origin(target) != self._origin:
                    return resp
                resp.release()
                url = chain.follow(url, location)  # capped, loop-free; each hop is guarded
            except EgressRefused as e:  # logged by the guard as a decision event
                raise EgressDenied(f"upstream hub: {e.reason}") from e
            except TimeoutError as e:
                log.warning("upstream_failed", upstream="hub", url=redact(url), error=repr(e))
                raise UpstreamUnavailable(
                    f"upstream hub timed out ({self._describe(url)})", timeout=True
                ) from e
            except aiohttp.ClientError as e:
                log.warning("upstream_failed", upstream="hub", url=redact(url), error=repr(e))
                raise UpstreamUnavailable(f"upstream hub unreachable: {describe(e)}") from e
            if resp.status == 303:
                method, data = "GET", None

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        """Raise the domain error for a failed status (the response is released)."""
        if resp.status < 400:
            return
        code = resp.headers.get("X-Error-Code")
        message = resp.headers.get("X-Error-Message") or ""
        if not message:
            try:
                message = (await resp.content.read(2000)).decode("utf-8", "replace")
            except aiohttp.ClientError:
                message = ""
        resp.release()
        where = self._describe(str(resp.url))
        message = message.strip() or f"upstream hub answered {resp.status}"
        if resp.status in (404, 410):
            default = ENTRY_NOT_FOUND if "/resolve/" in where else REPO_NOT_FOUND
            raise HubNotFound(message, code or default)
        if resp.status in (401, 403):
            raise HubRefused(message, resp.status, code)
        raise UpstreamUnavailable(f"upstream hub answered {resp.status} for {where}: {message}")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        body = bytearray()
        try:
            async for chunk in resp.content.iter_chunked(256 * 1024):
                body += chunk
                if len(body) > MAX_JSON:
                    raise UpstreamInvalid(f"upstream document larger than {MAX_JSON} bytes")
        except TimeoutError as e:
            raise UpstreamUnavailable("upstream hub timed out", timeout=True) from e
        except aiohttp.ClientError as e:
            log.warning("upstream_transfer_broke", upstream="hub", error=repr(e))
            raise UpstreamUnavailable(f"upstream hub transfer broke: {describe(e)}") from e
        return bytes(body)

    # ---- API -------------------------------------------------------------------------------------
    async def fetch(
        self,
        method: str,
        url: str,
        auth: str | None,
        data: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> HubResponse:
        """A JSON document (info, tree page, paths-info).

        Raises:
            HubNotFound: 404 (with the hub's code).
            HubRefused: 401/403 (gated, private, bad token).
            UpstreamUnavailable / UpstreamInvalid: transport failure, 5xx, oversize.
        """
        resp = await self._send(method, url, auth, data=data, headers=headers)
        try:
            await self._check(resp)
            if resp.status != 200:
                raise UpstreamUnavailable(f"upstream hub answered {resp.status}")
            body = await self._read(resp)
            return HubResponse(resp.status, body, CIMultiDict(resp.headers), str(resp.url))
        finally:
            resp.release()

    async def head_file(self, ref: RepoRef, commit: str, path: str, auth: str | None) -> FileMeta:
        """Size and hashes of one file at one commit, from the hub's /resolve HEAD (§5)."""
        resp = await self._send(
            "HEAD", self.file_url(ref, commit, path), auth, follow="same-origin"
        )
        try:
            await self._check(resp)
            h = resp.headers
        finally:
            resp.release()
        answered = h.get("X-Repo-Commit")
        if answered and answered != commit:
            raise UpstreamInvalid(f"asked for commit {commit}, the hub answered {answered}")
        linked = unquote_etag(h.get("X-Linked-Etag"))
        if linked and is_sha256(linked):
            size = int_header(h, "X-Linked-Size")
            if size is None:
                raise UpstreamInvalid(f"{path}: LFS file without X-Linked-Size")
            return FileMeta(path, size, True, linked, None)
        etag = unquote_etag(h.get("ETag"))
        size = int_header(h, "Content-Length") if resp.status == 200 else None
        if is_commit(etag) and size is not None:  # a git blob id has a commit id's shape
            return FileMeta(path, size, False, None, etag)
        raise UpstreamInvalid(f"{path}: the hub gave no verifiable etag and size")

    @asynccontextmanager
    async def open_file(
        self, ref: RepoRef, commit: str, meta: FileMeta, auth: str | None
    ) -> AsyncIterator[HubBody]:
        """Stream one file (redirects followed here); resumes with Range on a cut."""
        body = HubBody(self, self.file_url(ref, commit, meta.path), auth, meta.size)
        try:
            await body.open(0)
            yield body
        finally:
            body.close()


class HubBody:
    """An upstream file body (mirror_store.fill.UpstreamBody) that survives cuts."""

    def __init__(self, client: HubClient, url: str, auth: str | None, size: int) -> None:
        self._client = client
        self._url = url
        self._auth = auth
        self._size = size
        self._resp: aiohttp.ClientResponse | None = None
        self.received = 0
        self.resumes = 0

    @property
    def size(self) -> int | None:
        return self._size

    async def open(self, start: int) -> None:
        headers = {"Range": f"bytes={start}-"} if start else {}
        resp = await self._client._send("GET", self._url, self._auth, headers=headers)
        await self._client._check(resp)
        expected = 206 if start else 200
        if resp.status != expected or (
            start and not resp.headers.get("Content-Range", "").startswith(f"bytes {start}-")
        ):
            resp.release()
            raise UpstreamUnavailable(
                f"upstream answered {resp.status} to a request from byte {start}"
            )
        self._resp = resp

    def close(self) -> None:
        if self._resp is not None:
            self._resp.release()
            self._resp = None

    async def _resume(self, why: str) -> None:
        self.close()
        if self.resumes >= MAX_RESUMES:
            raise UpstreamUnavailable(f"upstream transfer broke {self.resumes + 1} times: {why}")
        self.resumes += 1
        await asyncio.sleep(0.1 * self.resumes)
        await self.open(self.received)

    async def chunks(self) -> AsyncIterator[bytes]:
        timeout = self._client.timeout
        while True:
            assert self._resp is not None
            try:
                chunk = await asyncio.wait_for(self._resp.content.readany(), timeout)
            except TimeoutError:
                await self._resume(f"no data for {timeout}s")
                continue
            except aiohttp.ClientError as e:
                log.warning("upstream_transfer_broke", upstream="hub", error=repr(e))
                await self._resume(describe(e))
                continue
            if not chunk:
                if self.received < self._size:
                    await self._resume(f"body ended at byte {self.received} of {self._size}")
                    continue
                return
            self.received += len(chunk)
            yield chunk
