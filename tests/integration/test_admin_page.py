"""The admin page over HTTP (no browser): login, session cookie, CSRF, PRG, escaping."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.appkeys import RECORDS
from proxy.trust.records import Verdict
from tests.fakes.admin_testing import (
    ADMIN_TOKEN,
    CI_TOKEN,
    Running,
    running_app,
    settings_for_tests,
)

DIGEST = "ef" * 32
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def admin_proxy(tmp_path: Path, policies_dir: Path) -> AsyncIterator[Running]:
    async with running_app(settings_for_tests(tmp_path / "store", policies_dir)) as running:
        finding = {"rule": "pickle-global", "message": HOSTILE, "location": "x.pkl"}
        verdict = Verdict(DIGEST, "scan-1", "pickle", (finding,), time.time())
        await running.app[RECORDS].record_verdict(verdict)
        yield running


def _session() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for an IP-address host (what a browser does)
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(s: aiohttp.ClientSession, proxy: Running, token: str) -> aiohttp.ClientResponse:
    async with s.post(
        proxy.url + "/admin/login", data={"token": token}, allow_redirects=False
    ) as r:
        await r.read()
        return r


def _csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


async def test_admin_page__needs_login(admin_proxy: Running) -> None:
    async with _session() as s:
        async with s.get(admin_proxy.url + "/admin/", allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/admin/login"
        async with s.get(admin_proxy.url + "/admin/login") as r:
            assert r.status == 200
            assert 'name="token"' in await r.text()


async def test_admin_page__login_refuses_unknown_and_non_admin_tokens(admin_proxy: Running) -> None:
    async with _session() as s:
        assert (await _login(s, admin_proxy, "wrong")).status == 401
        r = await _login(s, admin_proxy, CI_TOKEN)
        assert r.status == 403
        assert len(s.cookie_jar) == 0


async def test_admin_page__login_sets_a_strict_httponly_cookie_without_the_token(
    admin_proxy: Running,
) -> None:
    async with _session() as s:
        r = await _login(s, admin_proxy, ADMIN_TOKEN)
        assert r.status == 303
        assert r.headers["Location"] == "/admin/"
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/admin" in cookie
        assert ADMIN_TOKEN not in cookie
        async with s.get(admin_proxy.url + "/admin/") as page:
            assert page.status == 200
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
            assert page.headers["Cache-Control"] == "no-store"
            html = await page.text()
        assert "root-admin" in html
        assert DIGEST in html


async def test_admin_page__cross_origin_login_is_refused(admin_proxy: Running) -> None:
    async with _session() as s:
        async with s.post(
            admin_proxy.url + "/admin/login",
            data={"token": ADMIN_TOKEN},
            headers={"Origin": "http://evil.example"},
            allow_redirects=False,
        ) as r:
            assert r.status == 403
        assert len(s.cookie_jar) == 0


async def test_admin_page__escapes_findings(admin_proxy: Running) -> None:
    async with _session() as s:
        await _login(s, admin_proxy, ADMIN_TOKEN)
        async with s.get(admin_proxy.url + "/admin/") as r:
            html = await r.text()
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


async def test_admin_page__approval_needs_the_session_csrf_token(admin_proxy: Running) -> None:
    url = f"{admin_proxy.url}/admin/quarantine/{DIGEST}"
    form = {"verdict": "approve", "reason": "looked at it"}
    async with _session() as s:
        await _login(s, admin_proxy, ADMIN_TOKEN)
        async with s.post(url, data=form, allow_redirects=False) as r:
            assert r.status == 403
        async with s.post(url, data={**form, "csrf": "forged"}, allow_redirects=False) as r:
            assert r.status == 403
    assert await admin_proxy.app[RECORDS].approval(DIGEST) is None
    async with _session() as anonymous:  # no session at all: to the login form
        async with anonymous.post(url, data=form, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/admin/login"


async def test_admin_page__approve_post_redirect_get(admin_proxy: Running) -> None:
    async with _session() as s:
        await _login(s, admin_proxy, ADMIN_TOKEN)
        async with s.get(admin_proxy.url + "/admin/") as r:
            csrf = _csrf(await r.text())
        async with s.post(
            f"{admin_proxy.url}/admin/quarantine/{DIGEST}",
            data={"verdict": "deny", "reason": "<b>bad</b> pickle", "csrf": csrf},
            allow_redirects=False,
        ) as r:
            assert r.status == 303
            assert r.headers["Location"].startswith("/admin/")
        async with s.get(admin_proxy.url + "/admin/") as r:
            html = await r.text()
        assert "denied</span> by root-admin" in html
        assert "&lt;b&gt;bad&lt;/b&gt; pickle" in html
        approval = await admin_proxy.app[RECORDS].approval(DIGEST)
        assert approval is not None
        assert approval.by == "root-admin"

        # bad input: flashed, nothing recorded, never a 500
        for fields in ({"verdict": "approve", "reason": " "}, {"verdict": "x", "reason": "r"}):
            async with s.post(
                f"{admin_proxy.url}/admin/quarantine/{DIGEST}",
                data={**fields, "csrf": csrf},
            ) as r:
                assert r.status == 200
                assert "Not recorded" in await r.text()
        async with s.post(
            f"{admin_proxy.url}/admin/quarantine/nothex", data={"csrf": csrf, "verdict": "deny"}
        ) as r:
            assert "Not recorded" in await r.text()
        approval = await admin_proxy.app[RECORDS].approval(DIGEST)
        assert approval is not None
        assert approval.verdict == "deny"


async def test_admin_page__logout_ends_the_session(admin_proxy: Running) -> None:
    async with _session() as s:
        await _login(s, admin_proxy, ADMIN_TOKEN)
        async with s.get(admin_proxy.url + "/admin/") as r:
            csrf = _csrf(await r.text())
        async with s.post(admin_proxy.url + "/admin/logout", data={"csrf": csrf}) as r:
            assert r.url.path == "/admin/login"
        async with s.get(admin_proxy.url + "/admin/", allow_redirects=False) as r:
            assert r.status == 303
