"""Client identity: tokens from pip/uv basic auth become the policy's client id and groups."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import aiohttp

from proxy.settings import AccessSettings, ClientSettings, UpstreamSettings
from tests.clients import pip_install, uv_install
from tests.conftest import ProxyFactory
from tests.fakes.pypi_index import FakeIndex

CI_TOKEN = "ci-token-0123456789abcdef"
DEV_TOKEN = "dev-token-0123456789abcdef"


def _access(anonymous: str = "deny") -> AccessSettings:
    return AccessSettings(
        anonymous=anonymous,  # type: ignore[arg-type]
        clients=(
            ClientSettings(
                id="ci-runner-1",
                groups=("ci",),
                token_sha256=hashlib.sha256(CI_TOKEN.encode()).hexdigest(),
            ),
            ClientSettings(id="dev-laptop", token=DEV_TOKEN),
        ),
    )


def _with_token(url: str, user: str, token: str) -> str:
    return url.replace("http://", f"http://{user}:{token}@")


async def test_tokens_identify_clients_and_group_settings_apply(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    (policies_dir / "data" / "pypi.json").write_text(
        json.dumps({"groups": {"ci": {"deny_versions": {"tiny-lib": {"1.1": "not for CI"}}}}})
    )
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), access=_access()
    )
    ci = await pip_install(
        _with_token(proxy.simple, "ci-runner-1", CI_TOKEN),
        "tiny-lib",
        target=tmp_path / "ci",
        home=tmp_path,
    )
    assert ci.returncode == 0, ci.output
    assert (tmp_path / "ci" / "tiny_lib-1.0.dist-info").is_dir()  # the ci group's rule

    dev = await uv_install(
        _with_token(proxy.simple, "me", DEV_TOKEN),
        "tiny-lib",
        target=tmp_path / "dev",
        home=tmp_path,
    )
    assert dev.returncode == 0, dev.output
    assert (tmp_path / "dev" / "tiny_lib-1.1.dist-info").is_dir()  # not in the ci group

    anon = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "anon", home=tmp_path)
    assert anon.returncode != 0
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Basic")
        bogus = "Basic " + base64.b64encode(b"x:not-a-known-token-at-all").decode()
        async with s.get(proxy.simple + "tiny-lib/", headers={"Authorization": bogus}) as r:
            assert r.status == 401
            assert "unknown airlock token" in await r.text()
        async with s.get(proxy.url + "/healthz") as r:
            assert r.status == 200  # probes need no token


async def test_anonymous_allowed_on_loopback_by_default(
    start_proxy: ProxyFactory, fake_index: FakeIndex
) -> None:
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), access=_access("loopback")
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            assert r.status == 200


async def test_admin_page_and_metrics_check_access_themselves_when_anonymous_is_denied(
    start_proxy: ProxyFactory, fake_index: FakeIndex
) -> None:
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), access=_access("deny")
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/admin/login") as r:
            assert r.status == 200  # the login form: the page has its own session check
        async with s.get(proxy.url + "/admin/", allow_redirects=False) as r:
            assert r.status == 303  # no session: the page sends the browser to its login form
            assert r.headers["Location"] == "/admin/login"
            assert "WWW-Authenticate" not in r.headers  # not the middleware's 401 challenge
        async with s.get(proxy.url + "/admin/api/stats") as r:
            assert r.status == 401  # the API relies on the identity middleware
        async with s.get(proxy.url + "/metrics") as r:
            assert r.status == 200  # loopback scrape, checked by the metrics endpoint itself
