"""The decision -> response mapping (proxy/errors.py) as an HTTP client sees it.

A real aiohttp server with ``error_middleware`` and a real client: every domain error is its
documented status, a plain-text body ``<title>: <message>`` and the same text in the reason
phrase (what pip prints for a failed download), made printable and bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from proxy.decision import Decision
from proxy.errors import (
    ERROR_HOOK,
    AirlockError,
    BadRequest,
    Denied,
    NotAcceptable,
    NotFound,
    OfflineMiss,
    UpstreamInvalid,
    UpstreamUnavailable,
    error_middleware,
    error_response,
    reason_phrase,
)

Raise = Callable[[], BaseException]
Hook = Callable[[web.Request, AirlockError], web.StreamResponse | None]


@asynccontextmanager
async def raising(make: Raise, hook: Hook | None = None) -> AsyncIterator[str]:
    """A server on port 0 whose one route raises ``make()``; yields its URL."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raise make()

    app = web.Application(middlewares=[error_middleware])
    if hook is not None:
        app[ERROR_HOOK] = hook
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/some/path"
    finally:
        await runner.cleanup()


async def fetch(url: str) -> tuple[int, str, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.reason or "", await r.text(), r.headers.get("Content-Type", "")


DENIAL = Decision(allow=False)


@pytest.mark.parametrize(
    ("make", "status", "title"),
    [
        # built inside the test (a factory), so a mutated __init__ is the one that runs
        (lambda: AirlockError("disk full"), 500, "Internal error"),
        (lambda: BadRequest("bad name"), 400, "Bad request"),
        (lambda: NotFound("no such project"), 404, "Not found"),
        (lambda: OfflineMiss("acme 1.0"), 404, "Not mirrored (offline mode)"),
        (lambda: NotAcceptable("no format"), 406, "Not acceptable"),
        (lambda: Denied("quarantined", DENIAL), 403, "Blocked by airlock policy"),
        (lambda: UpstreamInvalid("bad bytes"), 502, "Bad upstream response"),
        (lambda: UpstreamUnavailable("refused"), 502, "Upstream unavailable"),
        (lambda: UpstreamUnavailable("refused", timeout=False), 502, "Upstream unavailable"),
        (lambda: UpstreamUnavailable("slow", timeout=True), 504, "Upstream unavailable"),
    ],
)
async def test_each_error_is_its_status_title_and_message(
    make: Callable[[], AirlockError], status: int, title: str
) -> None:
    error = make()
    async with raising(lambda: error) as url:
        got_status, reason, text, ctype = await fetch(url)
    assert got_status == status
    assert text == f"{title}: {error.message}\n"
    assert reason == f"{title}: {error.message}"
    assert ctype.startswith("text/plain")


def test_an_error_keeps_its_message_and_a_denial_its_decision() -> None:
    e = Denied("quarantined", DENIAL)
    assert (e.message, str(e), e.decision) == ("quarantined", "quarantined", DENIAL)
    assert UpstreamUnavailable("x").status == 502
    assert str(UpstreamUnavailable("x", timeout=True)) == "x"


async def test_the_reason_phrase_is_one_printable_line() -> None:
    message = "naïve\r\nInjected: header\tand\x7f\x00 more"
    async with raising(lambda: NotFound(message)) as url:
        status, reason, text, _ = await fetch(url)
    assert status == 404
    assert reason == "Not found: na?ve??Injected: header?and?? more"
    assert text == f"Not found: {message}\n"  # the body keeps the text as it was


def test_reason_phrase_is_bounded_to_400_characters() -> None:
    assert reason_phrase("T", "x" * 1000) == "T: " + "x" * 397
    assert reason_phrase("T", "x" * 397) == "T: " + "x" * 397
    assert reason_phrase("T", " ~") == "T:  ~"  # the printable range's ends are kept


async def test_a_long_message_is_cut_in_the_reason_only() -> None:
    message = "y" * 1000
    async with raising(lambda: BadRequest(message)) as url:
        _, reason, text, _ = await fetch(url)
    assert reason == ("Bad request: " + message)[:400]
    assert text == f"Bad request: {message}\n"


def test_error_response_passes_headers() -> None:
    r = error_response(NotFound("x"), {"X-Error-Code": "EntryNotFound"})
    assert (r.status, r.reason, r.text) == (404, "Not found: x", "Not found: x\n")
    assert r.headers["X-Error-Code"] == "EntryNotFound"
    assert "X-Error-Code" not in error_response(NotFound("x")).headers


async def test_an_ecosystem_hook_renders_its_errors_or_falls_back() -> None:
    seen: list[tuple[str, str]] = []

    def hook(request: web.Request, err: AirlockError) -> web.StreamResponse | None:
        seen.append((request.path, err.message))
        if err.message == "mine":
            return web.Response(status=err.status, text="custom", headers={"X-Error-Code": "E"})
        return None

    async with raising(lambda: NotFound("mine"), hook) as url:
        assert (await fetch(url))[::2] == (404, "custom")
    async with raising(lambda: NotFound("other"), hook) as url:
        assert (await fetch(url))[::2] == (404, "Not found: other\n")
    assert seen == [("/some/path", "mine"), ("/some/path", "other")]


async def test_http_exceptions_pass_through() -> None:
    async with raising(lambda: web.HTTPConflict(text="as raised")) as url:
        status, _, text, _ = await fetch(url)
    assert (status, text) == (409, "as raised")


async def test_an_unexpected_exception_is_a_logged_500_without_details() -> None:
    with capture_logs() as logs:
        async with raising(lambda: KeyError("secret detail")) as url:
            status, reason, text, _ = await fetch(url)
    assert (status, reason) == (500, "Internal Server Error")
    assert text == "Internal error (logged with the request id)\n"
    assert "secret" not in text
    [event] = [e for e in logs if e["event"] == "unhandled_error"]
    assert event["path"] == "/some/path"
    assert event["log_level"] == "error"
    assert event["exc_info"] is True
