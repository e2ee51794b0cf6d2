"""GuardedConnector: an aiohttp TCPConnector that checks the addresses it connects to.

The check sits where aiohttp has resolved the host and is about to connect (``_resolve_host``,
which also answers for IP literals), so it judges exactly the addresses connected to: a name
that resolves to an internal address is refused, and DNS rebinding gains nothing (there is no
second lookup between the check and the connect).  Each connection is checked, so every hop of
a redirect chain is too.  An origin the guard lists (a configured upstream, an ``[egress] allow``
entry) is connected to whatever it resolves to.

With an outbound HTTP proxy (``HTTP(S)_PROXY``, an admin's setting) the proxy itself is not
checked and the target is resolved here and checked before the proxy is asked; the proxy's own
lookup is then the last word, so rebinding protection is as good as the proxy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.tracing import Trace

from .addresses import non_public_text
from .guard import HINT, EgressGuard
from .origins import Origin, normalize_host

# The URL whose connection is being made, if its addresses must be public; None when they need
# not be.  Set per connection attempt; a resolution outside one is checked (fail closed).
_CHECK: ContextVar[str | None] = ContextVar("airlock_egress_check", default="")


def _origin(req: ClientRequest) -> Origin:
    url = req.url
    return Origin(url.scheme.lower(), normalize_host(url.raw_host or ""), req.port or 0)


class GuardedConnector(aiohttp.TCPConnector):
    def __init__(self, guard: EgressGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = guard

    async def _create_connection(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        listed = self.guard.listed(_origin(req))
        if req.proxy is not None and not listed:
            await self._check(req.url.raw_host or "", req.port or 0, str(req.url), None)
        token = _CHECK.set(None if listed or req.proxy is not None else str(req.url))
        try:
            return await super()._create_connection(req, traces, timeout)
        finally:
            _CHECK.reset(token)

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        url = _CHECK.get()
        if url is None:
            return await super()._resolve_host(host, port, traces)
        return await self._check(host, port, url or f"//{host}:{port}", traces)

    async def _check(
        self, host: str, port: int, url: str, traces: Sequence[Trace] | None
    ) -> list[ResolveResult]:
        """Resolve *host* and refuse unless every address is public."""
        resolved = await super()._resolve_host(host, port, traces)
        for result in resolved:
            why = non_public_text(result["host"])
            if why is not None:
                reason = f"refused to connect to {why} ({HINT})"
                raise self.guard.refuse(reason, url, result["host"])
        return resolved


def guarded_session(
    guard: EgressGuard, trace_configs: list[aiohttp.TraceConfig] | None = None
) -> aiohttp.ClientSession:
    """The ClientSession of one upstream: pooled, environment proxies honoured, guarded."""
    connector = GuardedConnector(guard, limit=64, limit_per_host=32, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, trust_env=True, trace_configs=trace_configs)
