"""Metrics without a proxy: labels, per-app registries, the decision sink hook, upstream
timing, and /metrics refusing non-loopback clients without the admin scope."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from prometheus_client import generate_latest

from proxy.decision import Client, Decision, Reason, Subject
from proxy.errors import NotFound, UpstreamUnavailable
from proxy.identity import CLIENT_KEY
from proxy.logging import add_decision_sink, log_decision, request_context_middleware
from proxy.metrics import Metrics, upstream_trace
from proxy.metrics_collectors import handle_metrics, setup_metrics
from proxy.upstream import UpstreamClient


def value(m: Metrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def test_metrics__decisions_count_once_per_decision_and_once_per_rule() -> None:
    m = Metrics()
    m.decision({"ecosystem": "pypi", "action": "file", "outcome": "deny", "rules": ["a", "b"]})
    m.decision({"ecosystem": "pypi", "action": "page", "outcome": "allow", "rules": []})
    assert value(m, "airlock_decisions_total", ecosystem="pypi", action="file", outcome="deny") == 1
    assert value(m, "airlock_decision_rules_total", ecosystem="pypi", rule="a", outcome="deny") == 1
    assert value(m, "airlock_decision_rules_total", ecosystem="pypi", rule="b", outcome="deny") == 1
    assert (
        value(m, "airlock_decision_rules_total", ecosystem="pypi", rule="none", outcome="allow")
        == 1
    )


def test_metrics__registries_are_per_instance_and_methods_bounded() -> None:
    a, b = Metrics(), Metrics()
    a.request("BREW", "/x", 418)
    assert value(a, "airlock_http_requests_total", method="OTHER", route="/x", status="418") == 1
    assert b"airlock_http_requests_total{" not in generate_latest(b.registry)


def test_metrics__hit_ratio() -> None:
    m = Metrics()
    assert math.isnan(m.hit_ratio())
    m.served_from("upstream")
    m.served_from("store")
    m.served_from("store")
    m.served_from("elsewhere")  # ignored by the ratio
    assert m.hit_ratio() == pytest.approx(2 / 3)
    assert value(m, "airlock_store_hit_ratio") == pytest.approx(2 / 3)
    m.sent_bytes("store", 10)
    m.sent_bytes("store", 0)
    assert value(m, "airlock_served_bytes_total", source="store") == 10


def test_metrics__scan_verdicts() -> None:
    m = Metrics()
    m.scan_verdict("clean")
    m.scan_verdict("findings")
    m.scan_verdict("findings")
    assert value(m, "airlock_scan_verdicts_total", verdict="findings") == 2


def _subject() -> Subject:
    return Subject("pypi", "page", "tiny-lib", "fake", Client(id="ci"))


async def test_log_decision__calls_the_apps_sinks_during_its_requests() -> None:
    seen: list[Mapping[str, Any]] = []

    def broken(event: Mapping[str, Any]) -> None:
        raise RuntimeError("sink bug")

    async def handler(request: web.Request) -> web.Response:
        decision = Decision(False, (Reason("deny-list", "listed"),), revision="r" * 40)
        log_decision(_subject(), decision, outcome="deny")
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_context_middleware])
    add_decision_sink(app, broken)  # raising: logged, the request still succeeds
    add_decision_sink(app, seen.append)
    app.router.add_get("/", handler)
    async with TestServer(app) as server, aiohttp.ClientSession() as s:
        async with s.get(server.make_url("/"), headers={"X-Request-Id": "rid-1"}) as r:
            assert r.status == 200
    [event] = seen
    assert event["client"] == "ci"
    assert event["rules"] == ["deny-list"]
    assert event["outcome"] == "deny"
    assert event["request_id"] == "rid-1"
    log_decision(_subject(), Decision(True), outcome="allow")  # outside a request: no sinks
    assert len(seen) == 1


async def _fake_upstream() -> TestServer:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/gone", gone)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_upstream_client__observes_status_and_failures() -> None:
    calls: list[tuple[str, float, int]] = []
    server = await _fake_upstream()
    try:
        async with aiohttp.ClientSession() as session:
            client = UpstreamClient(session, "fake", 5.0, lambda *a: calls.append(a))
            await client.get_page(str(server.make_url("/ok")), "text/html")
            with pytest.raises(NotFound):
                async with client.open_file(str(server.make_url("/gone"))):
                    pass
            port = server.port
    finally:
        await server.close()
    async with aiohttp.ClientSession() as session:
        client = UpstreamClient(session, "fake", 5.0, lambda *a: calls.append(a))
        with pytest.raises(UpstreamUnavailable):  # nothing listens there any more
            await client.get_page(f"http://127.0.0.1:{port}/ok", "text/html")
    assert [(n, s) for n, _, s in calls] == [("fake", 200), ("fake", 404), ("fake", 0)]
    assert all(0 <= t < 5 for _, t, _ in calls)


async def test_upstream_trace__times_any_session() -> None:
    m = Metrics()
    server = await _fake_upstream()
    try:
        async with aiohttp.ClientSession(trace_configs=m.traces("hf")) as session:
            async with session.get(server.make_url("/ok")) as r:
                await r.read()
            async with session.get(server.make_url("/gone")) as r:
                await r.read()
    finally:
        await server.close()
    assert value(m, "airlock_upstream_request_seconds_count", upstream="hf") == 2
    assert value(m, "airlock_upstream_requests_total", upstream="hf", status="404") == 1
    assert isinstance(upstream_trace(m.upstream, "x"), aiohttp.TraceConfig)


def _metrics_request(remote: str, client: Client | None) -> web.Request:
    app = web.Application()
    setup_metrics(app)
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda k, d=None: (
        (remote, 4321) if k == "peername" else d
    )
    req = make_mocked_request("GET", "/metrics", app=app, transport=transport)
    if client is not None:
        req[CLIENT_KEY] = client
    return req


async def test_metrics_endpoint__needs_admin_off_loopback() -> None:
    with pytest.raises(web.HTTPUnauthorized):
        await handle_metrics(_metrics_request("10.1.2.3", None))
    with pytest.raises(web.HTTPForbidden):
        await handle_metrics(_metrics_request("10.1.2.3", Client(id="ci")))
    admin = Client(id="root-admin", scopes=("admin",))
    ok = await handle_metrics(_metrics_request("10.1.2.3", admin))
    assert ok.status == 200
    local = await handle_metrics(_metrics_request("::1", None))
    assert local.status == 200
    assert "airlock_fills_in_flight 0.0" in (local.text or "")
