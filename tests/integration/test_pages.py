"""Project pages: negotiation, canonical redirects, kept fields, stale-if-error, offline mode."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from proxy.pypi.routes import STORED_INDEX
from proxy.pypi.sources import StoredIndex
from proxy.settings import UpstreamSettings
from tests.clients import pip_install
from tests.conftest import Proxy, ProxyFactory
from tests.fakes.dists import wheel
from tests.fakes.pypi_index import FakeIndex

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize(
    ("accept", "status", "ctype"),
    [
        (None, 200, "text/html"),
        ("*/*", 200, "text/html"),
        ("text/html", 200, "text/html"),
        (JSON, 200, JSON),
        ("application/vnd.pypi.simple.latest+json", 200, JSON),
        (f"{JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01", 200, JSON),
        ("application/vnd.pypi.simple.v1+html", 200, "application/vnd.pypi.simple.v1+html"),
        ("application/xml", 406, "text/plain"),
        ("text/html;q=0", 406, "text/plain"),
    ],
)
async def test_accept_negotiation(
    proxy: Proxy, accept: str | None, status: int, ctype: str
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    async with aiohttp.ClientSession(skip_auto_headers=["Accept"]) as s:
        async with s.get(proxy.simple + "tiny-lib/", headers=headers) as r:
            assert r.status == status
            assert r.headers["Content-Type"].startswith(ctype)
            if status == 200:
                assert r.headers["Vary"] == "Accept"


async def test_non_canonical_name_redirects_to_canonical_url(proxy: Proxy) -> None:
    async with aiohttp.ClientSession() as s:
        for raw in ("Tiny_Lib", "tiny.lib", "TINY-LIB"):
            async with s.get(proxy.simple + raw + "/", allow_redirects=False) as r:
                assert r.status == 301
                assert r.headers["Location"] == "/pypi/simple/tiny-lib/"
        async with s.get(proxy.simple + "tiny-lib", allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"] == "/pypi/simple/tiny-lib/"


async def test_pages_keep_upstream_fields_and_point_at_the_proxy(
    proxy: Proxy, fake_index: FakeIndex
) -> None:
    fake_index.add(
        wheel("fancy", "1.0", requires_python=">=3.8"),
        yanked="broken build",
        upload_time="2021-02-03T04:05:06.000000Z",
        provenance="acme/fancy",
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "fancy/", headers={"Accept": JSON}) as r:
            doc = json.loads(await r.text())
        async with s.get(proxy.simple + "fancy/", headers={"Accept": "text/html"}) as r:
            page = await r.text()
        f = doc["files"][0]
        assert doc["versions"] == ["1.0"]
        assert f["requires-python"] == ">=3.8"
        assert f["yanked"] == "broken build"
        assert f["upload-time"] == "2021-02-03T04:05:06.000000Z"
        assert f["size"] == len(fake_index.file(f["filename"]).dist.data)
        assert f["hashes"] == {"sha256": fake_index.file(f["filename"]).dist.sha256}
        assert set(f["core-metadata"]) == {"sha256"}
        assert f["url"].startswith("../../files/fancy/")
        assert f["provenance"].startswith("../../provenance/fancy/")
        # PEP 708: the page says which upstream project it mirrors; nothing else names it
        assert doc["tracks"] == [fake_index.simple_url + "fancy/"]
        assert fake_index.url not in json.dumps({k: v for k, v in doc.items() if k != "tracks"})
        assert page.count(fake_index.url) == 1
        assert f'<meta name="pypi:tracks" content="{fake_index.simple_url}fancy/">' in page
        assert 'data-yanked="broken build"' in page
        assert 'data-requires-python="&gt;=3.8"' in page
        assert "data-core-metadata=" in page
        assert "data-dist-info-metadata=" in page
        async with s.get(proxy.simple + "fancy/" + f["provenance"]) as r:
            assert r.status == 200
            assert (await r.json())["attestation_bundles"]


async def test_html_only_upstream_is_parsed(proxy: Proxy, fake_index: FakeIndex) -> None:
    fake_index.faults.html_only = True
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/", headers={"Accept": JSON}) as r:
            doc = json.loads(await r.text())
    names = sorted(f["filename"] for f in doc["files"])
    assert names[0] == "tiny_lib-1.0-py3-none-any.whl"
    assert all("sha256" in f["hashes"] for f in doc["files"])


async def test_upstream_down_serves_last_good_page_and_says_so(
    start_proxy: ProxyFactory, fake_index: FakeIndex
) -> None:
    proxy = await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url), page_ttl=0)
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            assert r.status == 200
            assert "X-Airlock-Stale" not in r.headers
        fake_index.faults.down = True
        async with s.get(proxy.simple + "tiny-lib/") as r:  # answered at once, revalidating
            assert r.status == 200
            assert "past its TTL" in r.headers["X-Airlock-Stale"]
        stored = proxy.app[STORED_INDEX]
        assert isinstance(stored, StoredIndex)
        await stored.settled()
        async with s.get(proxy.simple + "tiny-lib/") as r:  # the revalidation failed: why
            assert r.status == 200
            assert "503" in r.headers["X-Airlock-Stale"]
            assert "tiny_lib-1.1" in await r.text()
        async with s.get(proxy.simple + "never-seen/") as r:
            assert r.status == 502
            assert "503" in await r.text()


async def test_unknown_project_is_404(proxy: Proxy) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "no-such-thing/") as r:
            assert r.status == 404
            assert "does not exist" in await r.text()


async def test_offline_mode_serves_only_the_store(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    up = UpstreamSettings(name="fake", url=fake_index.simple_url)
    online = await start_proxy(up)
    run = await pip_install(online.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert run.returncode == 0, run.output
    offline = await start_proxy(up, offline=True)
    before = sum(fake_index.requests.values())
    run = await pip_install(offline.simple, "tiny-lib", target=tmp_path / "b", home=tmp_path)
    assert run.returncode == 0, run.output
    async with aiohttp.ClientSession() as s:
        async with s.get(offline.simple + "tiny-app/") as r:
            assert r.status == 404
            assert "offline" in await r.text()
        async with s.get(offline.url + "/pypi/files/tiny-lib/tiny-lib-1.0.tar.gz") as r:
            assert r.status == 404
    assert sum(fake_index.requests.values()) == before  # offline never asked upstream
    async with aiohttp.ClientSession() as s:
        async with s.get(offline.simple) as r:
            assert "tiny-lib" in await r.text()


async def test_a_page_cache_of_one_page_still_serves_everything_from_the_store(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """``pypi.memory_files`` bounds the parsed pages kept in memory; evicted pages come back
    from the store (not the upstream) and are decided again, so nothing is lost."""
    up = UpstreamSettings(name="fake", url=fake_index.simple_url)
    proxy = await start_proxy(up, memory_files=1)
    run = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "a", home=tmp_path)
    assert run.returncode == 0, run.output
    before = sum(fake_index.requests.values())
    fake_index.faults.down = True
    run = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "b", home=tmp_path)
    assert run.returncode == 0, run.output
    assert {p.name.split("-")[0] for p in (tmp_path / "b").glob("*.dist-info")} == {
        "tiny_app",
        "tiny_lib",
    }
    assert sum(fake_index.requests.values()) == before
