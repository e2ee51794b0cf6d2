"""UpstreamClient: the only code that talks to an upstream server.

Uses the one injected ``aiohttp.ClientSession`` (created and closed by the app), forwards only
an explicit allow-list of request headers, streams bodies, and translates every transport
failure into the domain errors of ``errors.py`` (``raise … from e``), keeping "does not
exist" (NotFound) apart from "could not ask" (UpstreamUnavailable).  An optional ``observe``
callable gets (upstream name, seconds until the status was known, status or 0) per request.

Deadlines and a circuit breaker per upstream (``upstream_limits``): connecting, the response
headers and every gap between reads are bounded, and after repeated failures the upstream is
not asked for a cool-off (``CircuitOpen``, at once), so callers answer from the store.

Redirects are followed here (``egress.redirects``: capped, loop-free), so the guarded connector
checks every hop.  Messages for clients name the upstream by its configured name and say what
kind of failure it was; the URL (without its password) and the raw error go to the server log
only, because an internal upstream's address is not the clients' business.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import structlog

from .egress.guard import EgressDenied, EgressRefused, redact
from .egress.redirects import REDIRECT_STATUSES, RedirectChain, guard_of
from .errors import NotFound, UpstreamInvalid, UpstreamUnavailable
from .upstream_limits import (
    CircuitBreaker,
    UpstreamLimits,
    client_timeout,
)

log = structlog.get_logger("airlock.upstream")

MAX_PAGE_BYTES = 64 * 1024 * 1024
CHUNK = 256 * 1024
USER_AGENT = "airlock-mirror"


def describe(e: BaseException) -> str:
    """What kind of transport failure *e* is, for clients: never a host, address or URL."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return "its name did not resolve"
    if isinstance(e, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "TLS failed"
    if isinstance(e, aiohttp.ClientConnectorError):
        errno = e.os_error.errno
        return f"connection failed ({os.strerror(errno).lower()})" if errno else "connection failed"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "the server disconnected"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "the transfer broke"
    return type(e).__name__


@dataclass(frozen=True, slots=True)
class PageResponse:
    status: int  # 200 or 304
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    url: str  # final URL after redirects (base for relative links)


@dataclass(slots=True)
class StreamBody:
    """An upstream file response being streamed (implements mirror_store.fill.UpstreamBody)."""

    response: aiohttp.ClientResponse
    read_timeout: float

    @property
    def size(self) -> int | None:
        return self.response.content_length

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self.response.content
        while True:
            try:
                chunk = await asyncio.wait_for(content.readany(), self.read_timeout)
            except TimeoutError as e:
                raise UpstreamUnavailable(
                    f"no data from upstream for {self.read_timeout}s", timeout=True
                ) from e
            except aiohttp.ClientError as e:
                log.warning("upstream_transfer_broke", error=str(e))
                raise UpstreamUnavailable(f"upstream transfer broke: {describe(e)}") from e
            if not chunk:
                return
            yield chunk


class UpstreamClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        name: str,
        timeout: float,
        observe: Callable[[str, float, int], None] | None = None,
        limits: UpstreamLimits | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._session = session
        self.name = name
        self._timeout = timeout  # the read gap
        self._observe = observe
        self._limits = limits or UpstreamLimits()
        self.breaker = breaker or CircuitBreaker(name, self._limits)

    def _observed(self, start: float, status: int) -> None:
        if self._observe is not None:
            self._observe(self.name, time.perf_counter() - start, status)

    def _translate(self, e: BaseException, url: str) -> UpstreamUnavailable | EgressDenied:
        if isinstance(e, EgressRefused):  # logged by the guard as a decision event
            return EgressDenied(f"upstream {self.name}: {e.reason}")
        log.warning("upstream_failed", upstream=self.name, url=redact(url), error=repr(e))
        if isinstance(e, TimeoutError):
            return UpstreamUnavailable(f"upstream {self.name} timed out", timeout=True)
        return UpstreamUnavailable(f"upstream {self.name} unreachable: {describe(e)}")

    def _status(self, status: int, url: str) -> UpstreamUnavailable:
        log.warning("upstream_failed", upstream=self.name, url=redact(url), status=status)
        return UpstreamUnavailable(f"upstream {self.name} answered {status}")

    def _judge(self, status: int) -> None:
        """An answer's status on the circuit breaker: a 5xx (or 429) counts as a failure."""
        if status >= 500 or status == 429:
            self.breaker.failure(f"answered {status}")
        else:
            self.breaker.success()

    def _failed(self, e: BaseException, url: str, probe: bool) -> Exception:
        """No answer: translated for clients, and counted as a failure (unless refused)."""
        error = self._translate(e, url)
        if isinstance(error, EgressDenied):  # refused before asking: says nothing of health
            self.breaker.abandoned(probe)
        else:
            self.breaker.failure(describe(e))
        return error

    @asynccontextmanager
    async def _get(
        self,
        url: str,
        headers: Mapping[str, str],
        auto_decompress: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET with redirects followed here, each hop a new (guarded) connection, each within
        the connect and first-byte deadlines (the read gap bounds the body)."""
        chain = RedirectChain(url, guard_of(self._session))
        timeout = client_timeout(self._limits, self._timeout)
        while True:
            async with asyncio.timeout(self._limits.first_byte):
                resp = await self._session.get(
                    url,
                    headers=headers,
                    timeout=timeout,
                    auto_decompress=auto_decompress,
                    allow_redirects=False,
                )
            location = resp.headers.get("Location")
            if resp.status not in REDIRECT_STATUSES or not location:
                break
            resp.release()
            url = chain.follow(url, location)
        try:
            yield resp
        finally:
            resp.release()

    async def get_page(
        self,
        url: str,
        accept: str,
        etag: str | None = None,
        last_modified: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> PageResponse:
        """GET an index page, conditionally if validators are given.

        Raises:
            NotFound: upstream answered 404/410.
            UpstreamUnavailable: connection error, timeout, 5xx or other status.
            UpstreamInvalid: the page is larger than MAX_PAGE_BYTES.
        """
        headers = {"Accept": accept, "User-Agent": USER_AGENT, **(extra_headers or {})}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        probe = self.breaker.admit()  # raises CircuitOpen: not asked
        start, observed = time.perf_counter(), False
        try:
            async with self._get(url, headers) as resp:
                observed = True
                self._observed(start, resp.status)
                if resp.status in (404, 410):
                    self.breaker.success()
                    raise NotFound(f"not found on upstream {self.name}")
                if resp.status == 304:
                    self.breaker.success()
                    return PageResponse(304, b"", "", etag, last_modified, str(resp.url))
                if resp.status != 200:
                    self._judge(resp.status)
                    raise self._status(resp.status, str(resp.url))
                too_large = f"upstream {self.name} sent a page larger than {MAX_PAGE_BYTES} bytes"
                if (resp.content_length or 0) > MAX_PAGE_BYTES:
                    self.breaker.success()
                    raise UpstreamInvalid(too_large)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        self.breaker.success()
                        raise UpstreamInvalid(too_large)
                self.breaker.success()
                return PageResponse(
                    200,
                    bytes(body),
                    resp.headers.get("Content-Type", ""),
                    resp.headers.get("ETag"),
                    resp.headers.get("Last-Modified"),
                    str(resp.url),
                )
        except (aiohttp.ClientError, TimeoutError) as e:
            if not observed:
                self._observed(start, 0)
            raise self._failed(e, url, probe) from e
        except BaseException:
            self.breaker.abandoned(probe)  # cancelled: the probe slot is free again
            raise

    @asynccontextmanager
    async def open_file(
        self, url: str, extra_headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[StreamBody]:
        """Stream a file.  Same errors as get_page; redirects are followed here, not by clients."""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(extra_headers or {})}
        probe = self.breaker.admit()  # raises CircuitOpen: not asked
        start, observed = time.perf_counter(), False
        try:
            async with self._get(url, headers, auto_decompress=False) as resp:
                observed = True
                self._observed(start, resp.status)
                self._judge(resp.status)  # the headers came: the body is the fill's business
                if resp.status in (404, 410):
                    raise NotFound(f"not found on upstream {self.name}")
                if resp.status != 200:
                    raise self._status(resp.status, str(resp.url))
                yield StreamBody(resp, self._timeout)
        except (aiohttp.ClientError, TimeoutError) as e:
            if not observed:
                self._observed(start, 0)
                raise self._failed(e, url, probe) from e
            raise self._translate(e, url) from e
        except BaseException:
            if not observed:
                self.breaker.abandoned(probe)
            raise
