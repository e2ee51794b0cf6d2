"""Shared helpers of the artifact-response tests (proxy/serving.py): a real aiohttp server
with one route, its metrics, and a count of the requests it has finished.

Used by test_serving_blob.py (send_blob) and test_serving_fill.py (send_fill, safe_component).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from proxy.appkeys import METRICS
from proxy.errors import error_middleware
from proxy.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Srv:
    """A running test server: its URL, its metrics, and how many requests it has finished."""

    def __init__(self, url: str, metrics: Metrics) -> None:
        self.url, self.metrics = url, metrics
        self.finished = 0
        self._cond = asyncio.Condition()

    async def done(self, n: int) -> None:
        """Wait until *n* handler calls have returned (counting happens before that)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.finished >= n)

    async def _one_finished(self) -> None:
        async with self._cond:
            self.finished += 1
            self._cond.notify_all()

    async def served(self, source: str, after: int) -> tuple[float, float]:
        """(responses counted, bytes counted) for *source*, once *after* requests finished."""
        await self.done(after)
        r = self.metrics.registry
        n = r.get_sample_value("airlock_artifacts_served_total", {"source": source}) or 0.0
        b = r.get_sample_value("airlock_served_bytes_total", {"source": source}) or 0.0
        return n, b


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, Srv]]:
    """One route (any method, any path) on 127.0.0.1 port 0; yields its URL and the server."""
    app = web.Application(middlewares=[error_middleware])
    metrics = Metrics()
    app[METRICS] = metrics
    srv: Srv

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            await srv._one_finished()

    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    srv = Srv(f"http://127.0.0.1:{runner.addresses[0][1]}/f", metrics)
    try:
        yield srv.url, srv
    finally:
        await runner.cleanup()
