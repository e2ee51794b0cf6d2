"""Failed admin logins are throttled per source and per client: the page's login form and
tokens on the admin API, over real HTTP from distinct loopback source addresses, with the
throttle's clock injected (no sleeps)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from proxy.admin.guard import LOGIN_THROTTLE
from proxy.admin.throttle import LoginThrottle
from tests.fakes.admin_testing import (
    ADMIN_TOKEN,
    CI_TOKEN,
    Running,
    running_app,
    settings_for_tests,
)

MAX = 3
LOCKOUT = 60.0
# Linux answers all of 127.0.0.0/8 on loopback: each of these is a distinct source address.
SOURCE_A, SOURCE_B, SOURCE_C = "127.0.0.2", "127.0.0.3", "127.0.0.1"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def proxy(tmp_path: Path, policies_dir: Path, clock: Clock) -> AsyncIterator[Running]:
    settings = settings_for_tests(tmp_path / "store", policies_dir)
    access = replace(
        settings.access, login_max_failures=MAX, login_window=300.0, login_lockout=LOCKOUT
    )

    def prepare(app: web.Application) -> None:
        app[LOGIN_THROTTLE] = LoginThrottle.from_settings(access, clock=clock)

    async with running_app(replace(settings, access=access), prepare) as running:
        yield running


def _from(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


async def _login(proxy: Running, source: str, token: str) -> tuple[int, str, dict[str, str]]:
    async with _from(source) as s:
        async with s.post(
            proxy.url + "/admin/login", data={"token": token}, allow_redirects=False
        ) as r:
            return r.status, await r.text(), dict(r.headers)


async def _api(
    proxy: Running, source: str, token: str | None, path: str = "/admin/api/stats"
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with _from(source) as s:
        async with s.get(proxy.url + path, headers=headers) as r:
            text = await r.text()
            body = json.loads(text) if r.content_type == "application/json" else text
            return r.status, body, dict(r.headers)


async def test_throttle__page_locks_a_source_after_wrong_logins_even_for_the_right_token(
    proxy: Running, clock: Clock
) -> None:
    with capture_logs() as logs:
        for _ in range(MAX):
            status, html, _ = await _login(proxy, SOURCE_A, "wrong-token-guess")
            assert status == 401
            assert "Unknown token." in html
        status, html, headers = await _login(proxy, SOURCE_A, "wrong-token-guess")
        assert status == 429
        assert headers["Retry-After"] == "60"
        assert '<p class="error" role="alert">Too many failed admin logins from this address;' in (
            html
        )
        assert "try again in 60 seconds." in html
        assert 'name="token"' in html  # the form is still there
        clock.now += 20
        status, html, headers = await _login(proxy, SOURCE_A, ADMIN_TOKEN)  # right, still locked
        assert status == 429
        assert headers["Retry-After"] == "40"
        assert "Set-Cookie" not in headers
    failed = [e for e in logs if e["event"] == "admin_login_failed"]
    assert [(e["source"], e["account"], e["via"], e["failures"]) for e in failed] == [
        (SOURCE_A, None, "page", n) for n in range(1, MAX + 1)
    ]
    assert [e["lockout"] for e in failed] == [0, 0, LOCKOUT]
    throttled = [e for e in logs if e["event"] == "admin_login_throttled"]
    assert [
        (e["source"], e["account"], e["locked"], e["failures"], e["retry_after"]) for e in throttled
    ] == [
        (SOURCE_A, None, "source", MAX, LOCKOUT),
        (SOURCE_A, "root-admin", "source", MAX, 40.0),
    ]
    assert all(e["log_level"] == "warning" for e in failed + throttled)

    clock.now += 40  # the lockout is over
    status, _, headers = await _login(proxy, SOURCE_A, ADMIN_TOKEN)
    assert status == 303
    assert headers["Location"] == "/admin/"


async def test_throttle__api_tokens_are_throttled_per_source(proxy: Running, clock: Clock) -> None:
    for _ in range(MAX):
        status, body, _ = await _api(proxy, SOURCE_A, "wrong-token-guess")
        assert status == 401
    status, body, headers = await _api(proxy, SOURCE_A, ADMIN_TOKEN)
    assert status == 429
    assert headers["Retry-After"] == "60"
    assert body == {
        "error": "Too many failed admin logins from this address; try again in 60 seconds."
    }
    # the same guesses on /metrics (its admin-token check) are refused too
    assert (await _api(proxy, SOURCE_A, "wrong-token-guess", "/metrics"))[0] == 429
    # another source is not held back by SOURCE_A's failures
    assert (await _api(proxy, SOURCE_B, ADMIN_TOKEN))[0] == 200
    assert (await _login(proxy, SOURCE_B, ADMIN_TOKEN))[0] == 303
    clock.now += LOCKOUT
    assert (await _api(proxy, SOURCE_A, ADMIN_TOKEN))[0] == 200


async def test_throttle__metrics_token_guesses_count(proxy: Running) -> None:
    for _ in range(MAX):
        assert (await _api(proxy, SOURCE_A, "wrong-token-guess", "/metrics"))[0] == 401
    assert (await _api(proxy, SOURCE_A, ADMIN_TOKEN))[0] == 429


async def test_throttle__requests_without_credentials_are_not_attempts(proxy: Running) -> None:
    for _ in range(MAX + 2):
        assert (await _api(proxy, SOURCE_A, None))[0] == 401
    assert (await _api(proxy, SOURCE_A, ADMIN_TOKEN))[0] == 200


async def test_throttle__page_and_api_failures_add_up(proxy: Running) -> None:
    assert (await _login(proxy, SOURCE_A, "wrong-token-guess"))[0] == 401
    for _ in range(MAX - 1):
        assert (await _api(proxy, SOURCE_A, "wrong-token-guess"))[0] == 401
    assert (await _login(proxy, SOURCE_A, ADMIN_TOKEN))[0] == 429


async def test_throttle__a_client_locked_out_is_refused_from_every_source(
    proxy: Running, clock: Clock
) -> None:
    with capture_logs() as logs:
        for source in (SOURCE_A, SOURCE_A, SOURCE_B):  # the client's failures, two sources
            assert (await _login(proxy, source, CI_TOKEN))[0] == 403
        status, html, headers = await _login(proxy, SOURCE_C, CI_TOKEN)  # a fresh source
    assert status == 429
    assert headers["Retry-After"] == "60"
    assert "Too many failed admin logins from this client; try again in 60 seconds." in html
    throttled = [e for e in logs if e["event"] == "admin_login_throttled"]
    assert [(e["source"], e["account"], e["locked"], e["failures"]) for e in throttled] == [
        (SOURCE_C, "ci-runner", "account", MAX)
    ]
    # the client's lockout holds back that client, not the admin on the same fresh source
    assert (await _login(proxy, SOURCE_C, ADMIN_TOKEN))[0] == 303
    status, body, _ = await _api(proxy, SOURCE_C, CI_TOKEN)
    assert status == 429
    assert "from this client" in body["error"]
    clock.now += LOCKOUT
    assert (await _api(proxy, SOURCE_C, CI_TOKEN))[0] == 403  # lockout over: back to 403


async def test_throttle__lockouts_double_when_guessing_goes_on(
    proxy: Running, clock: Clock
) -> None:
    for expected in ("60", "120", "240"):
        for _ in range(MAX):
            assert (await _login(proxy, SOURCE_A, "wrong-token-guess"))[0] == 401
        status, _, headers = await _login(proxy, SOURCE_A, ADMIN_TOKEN)
        assert (status, headers["Retry-After"]) == (429, expected)
        clock.now += float(expected)
    assert (await _login(proxy, SOURCE_A, ADMIN_TOKEN))[0] == 303


async def _make_client(proxy: Running, client_id: str, scopes: list[str]) -> str:
    """(Re)create an API-made client *client_id*; its new token."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with _from(SOURCE_C) as s:
        async with s.delete(f"{proxy.url}/admin/api/clients/{client_id}", headers=admin) as r:
            assert r.status in (204, 404)
        body = {"id": client_id, "scopes": scopes}
        async with s.post(proxy.url + "/admin/api/clients", json=body, headers=admin) as r:
            assert r.status == 201
            token: str = (await r.json())["token"]
            return token


@pytest.mark.parametrize("via", ["page", "api"])
async def test_throttle__a_successful_login_resets_its_client(proxy: Running, via: str) -> None:
    """A client refused twice (no admin scope), then given the scope: its successful login
    clears its count, so after losing the scope again two more refusals do not lock it."""
    token = await _make_client(proxy, "flaky", [])
    for _ in range(MAX - 1):
        assert (await _login(proxy, SOURCE_A, token))[0] == 403
    token = await _make_client(proxy, "flaky", ["admin"])
    if via == "page":
        assert (await _login(proxy, SOURCE_B, token))[0] == 303
    else:
        assert (await _api(proxy, SOURCE_B, token))[0] == 200
    token = await _make_client(proxy, "flaky", [])
    for _ in range(MAX - 1):
        assert (await _login(proxy, SOURCE_B, token))[0] == 403


async def test_throttle__settings_reach_the_running_app(tmp_path: Path, policies_dir: Path) -> None:
    settings = settings_for_tests(tmp_path / "store", policies_dir)
    settings = replace(settings, access=replace(settings.access, login_max_failures=2))
    async with running_app(settings) as proxy:
        for _ in range(2):
            assert (await _login(proxy, SOURCE_A, "wrong-token-guess"))[0] == 401
        status, _, headers = await _login(proxy, SOURCE_A, ADMIN_TOKEN)
        assert (status, headers["Retry-After"]) == (429, "60")
