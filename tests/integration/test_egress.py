"""The egress guard with real servers and real clients: a hostile or compromised upstream
cannot make airlock fetch from loopback or other internal addresses (issue #11, item 5).

The "internal service" is a real server on another loopback port that answers every request
with secret bytes; it must never be asked.  Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from proxy.appkeys import META
from proxy.egress.connector import guarded_session
from proxy.egress.guard import EgressDenied, EgressGuard
from proxy.settings import UpstreamSettings
from proxy.upstream import UpstreamClient
from tests.clients import pip_install, uv_install
from tests.conftest import ProxyFactory
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_fixtures import MODEL
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import hf_proxy

SECRET = b"internal-service-secret-4f1c9a"
WHEEL = "acme_tool-1.0-py3-none-any.whl"


@dataclass
class Server:
    """A real server on 127.0.0.1:0; ``hits`` counts the requests it got."""

    url: str = ""
    port: int = 0
    hits: list[str] = field(default_factory=list)


@asynccontextmanager
async def serve(routes: dict[str, Any]) -> AsyncIterator[Server]:
    server = Server()

    async def handle(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path_qs)
        answer = routes.get(request.path, SECRET)
        if callable(answer):
            return answer(request)  # type: ignore[no-any-return]
        return web.Response(body=answer, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def redirect(to: str) -> Any:
    return lambda _request: web.Response(status=302, headers={"Location": to})


def page(file_url: str) -> bytes:
    """A PEP 691 page of acme-tool whose one file lives at *file_url* (hash of the secret)."""
    sha = hashlib.sha256(SECRET).hexdigest()
    entry = {"filename": WHEEL, "url": file_url, "hashes": {"sha256": sha}, "size": len(SECRET)}
    entry["upload-time"] = "2020-01-01T00:00:00Z"
    doc = {"meta": {"api-version": "1.1"}, "name": "acme-tool", "files": [entry]}
    return json.dumps(doc).encode()


def json_page(body: bytes) -> Any:
    return lambda _r: web.Response(body=body, content_type="application/vnd.pypi.simple.v1+json")


def egress_events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("event") == "decision" and "egress" in e.get("rules", ())]


# ---- the guarded session itself ---------------------------------------------------------------


async def test_connector__configured_origin_only_not_its_host_nor_its_address() -> None:
    """A configured upstream allows its exact origin: not another port on the same loopback
    host, not a name that resolves to it (localhost), unless an admin lists that origin."""
    async with serve({"/ok": b"ok"}) as upstream, serve({}) as internal:
        guard = EgressGuard.build("pypi", "corp", [f"{upstream.url}/simple/"], ())
        async with guarded_session(guard) as session:
            async with session.get(f"{upstream.url}/ok") as r:
                assert await r.read() == b"ok"
            for url in (f"{internal.url}/x", f"http://localhost:{internal.port}/x"):
                with pytest.raises(aiohttp.ClientError, match="refused to connect to a loopback"):
                    await session.get(url)
            with pytest.raises(aiohttp.ClientError, match="loopback"):  # the upstream's port,
                await session.get(f"http://localhost:{upstream.port}/ok")  # by another name
        assert internal.hits == []
        listed = EgressGuard.build("pypi", "corp", [], [internal.url])
        async with guarded_session(listed) as session:
            async with session.get(f"{internal.url}/x") as r:
                assert await r.read() == SECRET  # an admin listed it: fetched
            with pytest.raises(aiohttp.ClientError, match="loopback"):
                await session.get(f"{upstream.url}/ok")  # not configured here: refused


async def test_redirects__every_hop_checked_loops_and_long_chains_refused() -> None:
    """The upstream client follows redirects itself: a hop to an internal address, a loop and a
    chain longer than the cap are refused, each as one logged decision with the reason."""
    async with serve({}) as internal:
        routes = {
            "/to-internal": redirect(f"{internal.url}/secret"),
            "/loop-a": redirect("/loop-b"),
            "/loop-b": redirect("/loop-a"),
            "/to-file": redirect("file:///etc/passwd"),
            "/fine": redirect("/page"),
            "/page": b"<html></html>",
            **{f"/chain/{i}": redirect(f"/chain/{i + 1}") for i in range(10)},
        }
        async with serve(routes) as upstream:
            guard = EgressGuard.build("pypi", "corp", [upstream.url], ())
            async with guarded_session(guard) as session:
                client = UpstreamClient(session, "corp", 5.0)
                assert (await client.get_page(f"{upstream.url}/fine", "*/*")).status == 200
                cases = {
                    "/to-internal": "refused to connect to a loopback address",
                    "/loop-a": "refused to follow a redirect loop",
                    "/chain/0": "refused to follow a redirect chain longer than 5 hops",
                    "/to-file": "refused to follow a redirect to a non-HTTP URL",
                }
                for path, reason in cases.items():
                    with structlog.testing.capture_logs() as logs:
                        with pytest.raises(EgressDenied) as e:
                            await client.get_page(f"{upstream.url}{path}", "*/*")
                    assert e.value.message.startswith(f"upstream corp: {reason}")
                    assert str(upstream.port) not in e.value.message
                    assert str(internal.port) not in e.value.message
                    [event] = egress_events(logs)
                    assert event["upstream"] == "corp"
                    assert event["outcome"] == "deny"
                    assert event["reasons"][0].startswith(reason)
                    assert event["url"].startswith("http://127.0.0.1:")  # the server log has it
        assert internal.hits == []


# ---- pip: a file URL that points at an internal service --------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_pip__file_url_to_an_internal_service_is_refused(
    start_proxy: ProxyFactory, tmp_path: Path, host: str
) -> None:
    """An index page whose file URL points at another loopback port (by address or by a name
    that resolves there): pip and uv fail (uv shows the reason), the secret never reaches them,
    nothing is stored, and each refusal is one decision event."""
    async with serve({}) as internal:
        file_url = f"http://{host}:{internal.port}/{WHEEL}"
        async with serve({"/simple/acme-tool/": json_page(page(file_url))}) as index:
            corp = UpstreamSettings(name="corp", url=f"{index.url}/simple/", kind="internal")
            proxy = await start_proxy(corp)
            with structlog.testing.capture_logs() as logs:
                run = await pip_install(
                    proxy.simple,
                    "acme-tool",
                    target=tmp_path / "t",
                    home=tmp_path,
                    extra=("--retries", "0"),
                )
            assert run.returncode != 0
            assert "502 error responses" in run.said  # pip shows no 5xx reason; uv does:
            assert SECRET.decode() not in run.said
            assert str(internal.port) not in run.said
            uv = await uv_install(proxy.simple, "acme-tool", target=tmp_path / "u", home=tmp_path)
            assert uv.returncode != 0
            assert "refused to connect to a loopback address" in uv.said, uv.output
            assert SECRET.decode() not in uv.said
            assert str(internal.port) not in uv.said
            [event] = egress_events(logs)
            assert event["upstream"] == "corp"
            assert event["ecosystem"] == "pypi"
            assert f":{internal.port}/" in event["url"]  # the server log names it
            assert not [e for e in logs if e.get("rules") == ["verification"]]
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{proxy.url}/pypi/files/acme-tool/{WHEEL}") as r:
                    body = await r.read()
                    assert r.status == 502
                    assert b"refused to connect to a loopback address" in body
                    assert SECRET not in body
                    assert str(internal.port) not in body.decode() + str(dict(r.headers))
        assert internal.hits == []
        assert await proxy.app[META].get_file("pypi", "acme-tool", WHEEL) is None
        assert not [p for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()]


# ---- huggingface_hub: a hub redirect to an unlisted internal origin ---------------------------


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        running.mode.lfs_redirect = True  # LFS bodies: 302 to the CDN, another loopback origin
        yield running


async def test_hf__redirect_to_an_unlisted_internal_origin_is_refused(
    hub: FakeHub, tmp_path: Path
) -> None:
    """The hub's Location points at an origin nobody listed (its CDN on another loopback port):
    huggingface_hub gets an error with the reason, and the CDN is never asked.  Listing it in
    [egress] allow (as the other hub tests do) is what makes the same download work."""
    sha = hub.commit_sha(MODEL)
    snippet = f"result = read_hex(download({MODEL!r}, 'model.safetensors', revision={sha!r}))"
    cdn_port = hub.cdn_url.rsplit(":", 1)[1]
    async with hf_proxy(tmp_path, hub.url) as proxy:
        with structlog.testing.capture_logs() as logs:
            run = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "a"))
    assert run.error is not None
    assert "refused to connect to a loopback address" in run.error.message
    assert cdn_port not in run.error.message + run.stdout + run.stderr
    assert hub.requests.filter(server="cdn") == []
    events = egress_events(logs)
    assert events
    assert all(e["ecosystem"] == "hf" and e["upstream"] == "hub" for e in events)
    assert f":{cdn_port}/" in events[0]["url"]
    async with hf_proxy(tmp_path / "listed", hub.url, egress_allow=(hub.cdn_url,)) as proxy:
        run = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "b"))
    assert bytes.fromhex(run.ok()) == hub.expect(MODEL, "model.safetensors").content()
