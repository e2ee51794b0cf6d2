"""Issue #13, fault 7: the first admin.  ``airlock admin create-token`` makes an admin client in
the store and prints its token once; a running proxy accepts it without a restart; the login
page and the start-up log say how while no admin exists."""

from __future__ import annotations

import aiohttp
import structlog

from proxy.serve import log_started
from proxy.settings import UpstreamSettings
from tests.airlock_process import run_airlock, serve_env
from tests.conftest import Proxy, ProxyFactory
from tests.fakes.pypi_index import FakeIndex

HINT = "airlock admin create-token"


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login_page(proxy: Proxy) -> str:
    async with _session() as s:
        async with s.get(proxy.url + "/admin/login") as r:
            assert r.status == 200
            return await r.text()


async def _create(proxy: Proxy, *args: str) -> tuple[int, list[str], list[str]]:
    env = serve_env(proxy.settings.store.path.parent)  # the same store and policies
    env["AIRLOCK_STORE__PATH"] = str(proxy.settings.store.path)
    return await run_airlock("admin", "create-token", *args, env=env)


async def test_create_token_gives_a_running_proxy_its_first_admin(
    start_proxy: ProxyFactory, fake_index: FakeIndex
) -> None:
    proxy = await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url))
    assert HINT in await _login_page(proxy)

    code, out, err = await _create(proxy)
    assert code == 0, err
    assert len(out) == 1  # the token alone on stdout
    token = out[0]
    assert len(token) >= 32
    assert "shown only now" in " ".join(err)

    async with _session() as s:
        async with s.post(
            proxy.url + "/admin/login", data={"token": token}, allow_redirects=False
        ) as r:
            assert r.status == 303, await r.text()
            assert r.headers["Location"] == "/admin/"
        async with s.get(proxy.url + "/admin/") as r:
            assert r.status == 200
            assert "admin" in await r.text()
    assert HINT not in await _login_page(proxy)  # an admin exists now

    code, out, err = await _create(proxy)
    assert code == 1
    assert out == []
    assert "a client 'admin' exists already" in err[0]


async def test_the_first_admin_token_works_on_the_api_without_a_restart(proxy: Proxy) -> None:
    code, out, err = await _create(proxy, "--id", "first-admin")
    assert code == 0, err
    headers = {"Authorization": f"Bearer {out[0]}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/admin/api/clients", headers=headers) as r:
            assert r.status == 200
            clients = (await r.json())["clients"]
    assert [(c["id"], c["scopes"], c["source"]) for c in clients] == [
        ("first-admin", ["admin"], "api")
    ]


async def test_create_token_refuses_a_bad_id(proxy: Proxy) -> None:
    code, out, err = await _create(proxy, "--id", "no spaces allowed")
    assert code == 2
    assert out == []
    assert "--id" in err[0]


def test_start_up_log_says_how_while_no_admin_exists(proxy: Proxy) -> None:
    with structlog.testing.capture_logs() as logs:
        log_started(proxy.app, [("127.0.0.1", 1234)])
    missing = [e for e in logs if e["event"] == "admin_missing"]
    assert len(missing) == 1
    assert HINT in missing[0]["hint"]
    assert [e["port"] for e in logs if e["event"] == "airlock_started"] == [1234]
