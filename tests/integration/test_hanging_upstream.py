"""A hanging upstream (accepts, never answers) must not stall what is stored (issue #13, 1).

Stored pages past their TTL are answered at once while they are revalidated in the background
(stale-while-revalidate), stored files never wait on a page revalidation, a page never fetched
waits only within the upstream's deadlines and then fails closed (504 naming the upstream),
and a circuit breaker per upstream stops asking it after repeated failures.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import structlog

from proxy.pypi.routes import STORED_INDEX
from proxy.pypi.sources import StoredIndex
from proxy.settings import UpstreamSettings
from proxy.upstream_limits import UpstreamLimits
from tests.clients import pip_install, uv_install
from tests.conftest import ManualClock, Proxy, ProxyFactory
from tests.fakes.hanging import HangingUpstream, hanging_upstream
from tests.fakes.pypi_index import FakeIndex

TTL = 600.0
WAIT_LONG = UpstreamLimits(first_byte=3600.0)  # the revalidation stays pending for the test
APP_WHEEL = "tiny_app-2.0-py3-none-any.whl"


def stored_index(proxy: Proxy) -> StoredIndex:
    index = proxy.app[STORED_INDEX]
    assert isinstance(index, StoredIndex)
    return index


async def warm_store(start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path) -> None:
    """pip and uv install tiny-app through a proxy in front of the healthy index."""
    proxy = await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url))
    pip = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "w-pip", home=tmp_path)
    assert pip.returncode == 0, pip.output
    uv = await uv_install(proxy.simple, "tiny-app", target=tmp_path / "w-uv", home=tmp_path)
    assert uv.returncode == 0, uv.output


async def proxy_before_hanging(
    start_proxy: ProxyFactory, hang: HangingUpstream, limits: UpstreamLimits = WAIT_LONG
) -> Proxy:
    """A proxy on the warm store whose upstream 'fake' now hangs; every page past its TTL."""
    clock = ManualClock()
    clock.advance(TTL + 1)
    upstream = UpstreamSettings(name="fake", url=f"{hang.url}/simple/", limits=limits)
    return await start_proxy(upstream, page_ttl=TTL, clock=clock)


async def test_cached_pip_and_uv_installs_do_not_wait_for_a_hanging_upstream(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Fully cached pip and uv installs complete while the upstream holds the revalidations."""
    await warm_store(start_proxy, fake_index, tmp_path)
    async with hanging_upstream() as hang:
        proxy = await proxy_before_hanging(start_proxy, hang)
        pip = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "pip", home=tmp_path)
        assert pip.returncode == 0, pip.output
        assert (tmp_path / "pip" / "tiny_app").is_dir()
        uv = await uv_install(proxy.simple, "tiny-app", target=tmp_path / "uv", home=tmp_path)
        assert uv.returncode == 0, uv.output
        assert (tmp_path / "uv" / "tiny_lib").is_dir()
        # the upstream was asked, and it is still holding the revalidations: nothing waited
        assert hang.accepted >= 1
        assert hang.open >= 1
        async with aiohttp.ClientSession() as s:
            async with s.get(proxy.simple + "tiny-app/") as r:
                assert r.status == 200
                stale = r.headers["X-Airlock-Stale"]
                assert "past its TTL" in stale
                assert "upstream fake" in stale
                assert hang.url.removeprefix("http://") not in stale
                assert r.headers["Warning"].startswith("110")
        assert hang.open >= 1


async def test_stored_files_are_served_while_their_page_revalidates(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Wheel and .metadata requests of a stored project answer while its page is pending."""
    await warm_store(start_proxy, fake_index, tmp_path)
    expected = fake_index.file(APP_WHEEL).dist
    async with hanging_upstream() as hang:
        proxy = await proxy_before_hanging(start_proxy, hang)
        files = f"{proxy.url}/pypi/files/tiny-app/"
        async with aiohttp.ClientSession() as s:
            async with s.get(files + APP_WHEEL + ".metadata") as r:
                assert r.status == 200
                assert await r.read() == expected.metadata
            async with s.get(files + APP_WHEEL) as r:
                assert r.status == 200
                assert await r.read() == expected.data
        assert hang.open == 1  # the page revalidation those requests started: still pending


async def test_a_page_never_fetched_fails_closed_within_the_deadline(
    start_proxy: ProxyFactory, tmp_path: Path
) -> None:
    """Nothing stored, upstream hanging: a 504 naming the upstream (never its address)."""
    async with hanging_upstream() as hang:
        limits = UpstreamLimits(connect=5.0, first_byte=0.5)
        # a read gap far beyond the test: only the first-byte deadline can end the wait
        upstream = UpstreamSettings(
            name="fake", url=f"{hang.url}/simple/", timeout=3600.0, limits=limits
        )
        proxy = await start_proxy(upstream)
        async with aiohttp.ClientSession() as s:
            async with s.get(proxy.simple + "never-seen/") as r:
                assert r.status == 504
                text = await r.text()
        assert "upstream fake timed out" in text
        assert hang.url.removeprefix("http://") not in text
        assert hang.accepted == 1


async def _stale(s: aiohttp.ClientSession, url: str) -> str | None:
    async with s.get(url) as r:
        assert r.status == 200
        return r.headers.get("X-Airlock-Stale")


async def _metric(s: aiohttp.ClientSession, proxy: Proxy, line: str) -> bool:
    async with s.get(f"{proxy.url}/metrics") as r:
        return line in (await r.text()).splitlines()


async def test_breaker_opens_after_failures_answers_from_store_and_closes_after_a_probe(
    start_proxy: ProxyFactory, fake_index: FakeIndex
) -> None:
    """3 revalidations time out -> circuit open: stored pages say so, the upstream is not
    asked, a new page fails at once; after the cool-off one probe succeeds and closes it."""
    clock = ManualClock()
    limits = UpstreamLimits(first_byte=1.0, breaker_failures=3, breaker_cooloff=30.0)
    upstream = UpstreamSettings(
        name="fake", url=fake_index.simple_url, timeout=3600.0, limits=limits
    )
    proxy = await start_proxy(upstream, page_ttl=TTL, clock=clock)
    stored = stored_index(proxy)
    pages = [proxy.simple + f"{name}/" for name in ("tiny-lib", "tiny-app", "tiny-dep")]
    open_metric = 'airlock_upstream_circuit_open{upstream="fake"} 1.0'
    async with aiohttp.ClientSession() as s:
        for page in pages:
            assert await _stale(s, page) is None
        fake_index.faults.hang = True
        clock.advance(TTL + 1)
        with structlog.testing.capture_logs() as logs:
            for page in pages:  # answered at once; three revalidations start and time out
                assert "past its TTL" in (await _stale(s, page) or "")
            await stored.settled()
        opened = [e for e in logs if e["event"] == "upstream_circuit_open"]
        assert [(e["upstream"], e["failures"]) for e in opened] == [("fake", 3)]
        assert await _metric(s, proxy, open_metric)
        assert "upstream fake timed out" in (await _stale(s, pages[0]) or "")
        asked = sum(fake_index.hung.values())
        clock.advance(11)  # past the stale page's retry interval: revalidated again, not asked
        await _stale(s, pages[0])
        await stored.settled()
        stale = await _stale(s, pages[0]) or ""
        assert "upstream fake circuit open after 3 consecutive failures" in stale
        assert sum(fake_index.hung.values()) == asked
        async with s.get(proxy.simple + "never-seen/") as r:
            assert r.status == 502
            assert "upstream fake circuit open" in await r.text()
        assert sum(fake_index.hung.values()) == asked
        fake_index.faults.hang = False
        clock.advance(31)  # the cool-off is over: the next revalidation is the probe
        with structlog.testing.capture_logs() as logs:
            await _stale(s, pages[0])
            await stored.settled()
        assert [e["event"] for e in logs if "circuit" in e["event"]] == [
            "upstream_circuit_probe",
            "upstream_circuit_closed",
        ]
        assert await _stale(s, pages[0]) is None
        assert await _metric(s, proxy, 'airlock_upstream_circuit_open{upstream="fake"} 0.0')
