"""``/metrics`` after real pip installs through the proxy: requests by route, decisions, bytes,
store hits, upstream latency, store size, policy reloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.settings import UpstreamSettings
from tests.clients import pip_install
from tests.fakes.admin_testing import ADMIN_TOKEN, Running, running_app, settings_for_tests
from tests.fakes.pypi_index import FakeIndex

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def metered_proxy(
    tmp_path: Path, policies_dir: Path, fake_index: FakeIndex
) -> AsyncIterator[Running]:
    settings = settings_for_tests(
        tmp_path / "store", policies_dir, UpstreamSettings("fake", fake_index.simple_url)
    )
    async with running_app(settings) as running:
        yield running


async def scrape(proxy: Running) -> Samples:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=")
            text = await r.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def test_metrics__count_a_real_cold_then_warm_install(
    metered_proxy: Running, tmp_path: Path
) -> None:
    cold = await pip_install(metered_proxy.simple, "tiny-app", target=tmp_path / "a", home=tmp_path)
    assert cold.returncode == 0, cold.output
    m = await scrape(metered_proxy)

    page = "/pypi/simple/{project}/"
    assert total(m, "airlock_http_requests_total", route=page, status="200") >= 2
    files = "/pypi/files/{project}/{filename}"
    assert total(m, "airlock_http_requests_total", route=files, status="200") >= 2
    assert not any("tiny" in dict(ls).get("route", "") for (_, ls) in m)  # patterns, not paths
    assert total(m, "airlock_decisions_total", ecosystem="pypi", outcome="allow") >= 4
    assert total(m, "airlock_decision_rules_total", ecosystem="pypi", rule="none") >= 4
    assert total(m, "airlock_artifacts_served_total", source="upstream") >= 2
    upstream_bytes = total(m, "airlock_served_bytes_total", source="upstream")
    assert upstream_bytes > 1000
    assert total(m, "airlock_upstream_request_seconds_count", upstream="fake") >= 4
    assert total(m, "airlock_upstream_requests_total", upstream="fake", status="200") >= 4
    assert total(m, "airlock_store_blobs") >= 2
    assert total(m, "airlock_store_bytes") >= upstream_bytes
    assert total(m, "airlock_fills_in_flight") == 0
    assert total(m, "airlock_policy_reloads_total", result="ok") == 0
    assert total(m, "airlock_policy_last_reload_ok") == 1
    assert total(m, "airlock_store_hit_ratio") == 0.0

    warm = await pip_install(metered_proxy.simple, "tiny-app", target=tmp_path / "b", home=tmp_path)
    assert warm.returncode == 0, warm.output
    m2 = await scrape(metered_proxy)
    store_hits = total(m2, "airlock_artifacts_served_total", source="store")
    assert store_hits >= 2
    assert total(m2, "airlock_served_bytes_total", source="store") > 1000
    assert total(m2, "airlock_artifacts_served_total", source="upstream") == total(
        m, "airlock_artifacts_served_total", source="upstream"
    )
    assert 0.4 < total(m2, "airlock_store_hit_ratio") < 1.0
    assert total(m2, "airlock_http_requests_total", route="/metrics", status="200") >= 1


async def test_metrics__policy_reload_and_denials_are_counted(
    metered_proxy: Running, policies_dir: Path, tmp_path: Path
) -> None:
    (policies_dir / "data" / "pypi.json").write_text('{"deny_projects": {"tiny-lib": "no"}}')
    async with aiohttp.ClientSession() as s:
        async with s.post(
            metered_proxy.url + "/admin/api/policy/reload",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as r:
            assert r.status == 200
    run = await pip_install(metered_proxy.simple, "tiny-lib", target=tmp_path / "t", home=tmp_path)
    assert run.returncode != 0
    m = await scrape(metered_proxy)
    assert total(m, "airlock_policy_reloads_total", result="ok") == 1
    assert total(m, "airlock_decision_rules_total", rule="deny-list", outcome="deny") >= 1
    route = "/admin/api/policy/reload"
    assert total(m, "airlock_http_requests_total", route=route, method="POST", status="200") == 1


async def test_metrics__each_app_counts_only_its_own_traffic(
    metered_proxy: Running, tmp_path: Path, policies_dir: Path
) -> None:
    """Per-app registries: a second app in the same process starts from zero."""
    async with aiohttp.ClientSession() as s:
        async with s.get(metered_proxy.url + "/healthz") as r:
            assert r.status == 200
    other_settings = settings_for_tests(tmp_path / "other", policies_dir)
    async with running_app(other_settings) as other:
        theirs = await scrape(other)
    ours = await scrape(metered_proxy)
    assert total(ours, "airlock_http_requests_total", route="/healthz") == 1
    assert total(theirs, "airlock_http_requests_total", route="/healthz") == 0
