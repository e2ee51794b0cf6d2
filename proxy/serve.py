"""``airlock serve``: the app on an explicit ``AppRunner`` and ``TCPSite``.

Start order: the app starts (store, policy, upstream sessions: a broken policy stops here),
then the socket is bound and listens, and only then ``airlock_started`` is logged, with the
address actually bound (``port = 0`` binds a free port; the event names it).  A bind failure
(port in use, no permission, unknown host) is one line on stderr and exit code 2.

Requests aiohttp's parser rejects (over-long request lines or headers, invalid URL or header
bytes, a bad method) never reach the app's middlewares: aiohttp answers them itself (a 400)
through its access logger.  ``MalformedAccessLogger`` is that logger: it writes the one
``access`` event and counts the ``airlock_http_requests_total`` metric for every response the
request middleware did not see, so a malformed request is logged and counted like any other.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
import uuid
from contextlib import suppress
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from .appkeys import IDENTITY, METRICS, START_SUMMARY
from .logging import ACCESS_LOGGED, access_log

log = structlog.get_logger("airlock")

MALFORMED_ROUTE = "malformed"  # the metric's route label for requests the parser refused
SHUTDOWN_TIMEOUT = 5.0
ADMIN_HINT = (
    "no client has the admin scope, so the admin page and API cannot be used: run "
    "`airlock admin create-token` (with the same --config) to create the first admin token"
)


def access_logger_for(app: web.Application) -> type[AbstractAccessLogger]:
    """The access-logger class for *app*'s runner (aiohttp instantiates it per connection)."""

    class MalformedAccessLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            if request.get(ACCESS_LOGGED):
                return  # the request middleware wrote its event; the metric hook counted it
            error = response.text if isinstance(response, web.Response) else None
            access_log.warning(
                "access",
                request_id=uuid.uuid4().hex[:16],
                method=request.method,
                path=None,
                status=response.status,
                ms=round(time * 1000, 2),
                remote=request.remote,
                error=(error or "malformed request").strip()[:300],
                malformed=True,
            )
            metrics = app.get(METRICS)
            if metrics is not None:
                metrics.request(request.method, MALFORMED_ROUTE, response.status)

    return MalformedAccessLogger


def _bind_error(host: str, port: int, e: OSError) -> str:
    where = f"{host}:{port}"
    if e.errno == errno.EADDRINUSE:
        why = "the address is already in use (another airlock or another server?)"
    elif e.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    elif e.errno == errno.EADDRNOTAVAIL:
        why = "the address is not on this machine"
    else:
        why = e.strerror or str(e)
    return f"airlock: cannot listen on {where}: {why}"


def _listening(runner: web.AppRunner) -> list[tuple[str, int]]:
    return [(str(a[0]), int(a[1])) for a in runner.addresses]


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def log_started(app: web.Application, addresses: list[tuple[str, int]]) -> None:
    """``airlock_started`` (once the socket listens), and how to get an admin when none exists."""
    summary: dict[str, Any] | None = app.get(START_SUMMARY)
    host, port = addresses[0] if addresses else ("", 0)
    log.info(
        "airlock_started",
        host=host,
        port=port,
        listening=[_url(h, p) for h, p in addresses],
        **(summary or {}),
    )
    registry = app.get(IDENTITY)
    if registry is not None and not registry.has_admin():
        log.warning("admin_missing", hint=ADMIN_HINT)


async def serve(app: web.Application, host: str, port: int) -> int:
    """Run *app* on *host*:*port* until SIGINT/SIGTERM; the exit code."""
    runner = web.AppRunner(
        app,
        access_log_class=access_logger_for(app),
        access_log=logging.getLogger("airlock.access"),
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await runner.setup()  # the app's start: may raise PolicyError
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            print(_bind_error(host, port, e), file=sys.stderr)
            return 2
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log_started(app, _listening(runner))
        await stop.wait()
        log.info("airlock_stopping")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(Exception):
                loop.remove_signal_handler(sig)
        await runner.cleanup()
        if stop.is_set():
            log.info("airlock_stopped")
