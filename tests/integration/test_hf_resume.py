"""Cuts, resumes, stale-if-error and offline mode on the Hub side."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from proxy.hf import routes
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_fixtures import BIG_FILE, BIG_MODEL, MODEL
from tests.fakes.hf_http import DropRule
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import hf_proxy

MIB = 1024 * 1024
SIZE = 24 * MIB + 321


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=SIZE) as running:
        running.mode.lfs_redirect = True
        yield running


def sha256_snippet(revision: str) -> str:
    return f"""
        import hashlib
        path = download({BIG_MODEL!r}, {BIG_FILE!r}, revision={revision!r})
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        result = [digest.hexdigest(), os.path.getsize(path)]
    """


async def test_upstream_cuts_are_resumed_by_the_proxy(hub: FakeHub, tmp_path: Path) -> None:
    """The CDN cuts twice; the proxy resumes with Range and the client never notices."""
    hub.mode.drop = DropRule(path=BIG_FILE, after_bytes=5 * MIB + 7, times=2, server="cdn")
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    async with hf_proxy(tmp_path, hub.url, egress_allow=(hub.cdn_url,)) as proxy:
        run = await run_hf(sha256_snippet(expected.commit), hf_env(proxy.endpoint, tmp_path))
        assert run.ok() == [expected.sha256, expected.size]
    gets = hub.requests.filter(server="cdn", method="GET")
    assert [g.status for g in gets] == [200, 206, 206]
    # each resume starts where the bytes that arrived end (a cut may lose some in flight)
    starts = [int(g.headers["range"].removeprefix("bytes=").rstrip("-")) for g in gets[1:]]
    assert 0 < starts[0] <= 5 * MIB + 7 < starts[1] <= 2 * (5 * MIB + 7)


async def test_client_resumes_with_range_after_a_failed_fill(hub: FakeHub, tmp_path: Path) -> None:
    """Cuts beyond the proxy's retry budget fail the fill (and cut the client); the client's
    retry with Range is served by a new fill, from the byte it asks for."""
    hub.mode.drop = DropRule(path=BIG_FILE, after_bytes=3 * MIB + 5, times=4, server="cdn")
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    async with hf_proxy(tmp_path, hub.url, egress_allow=(hub.cdn_url,)) as proxy:
        run = await run_hf(sha256_snippet(expected.commit), hf_env(proxy.endpoint, tmp_path))
        assert run.ok() == [expected.sha256, expected.size]
        assert proxy.app[routes.FILES]._filler.upstream_fetches == 2


async def test_stale_if_error_then_offline_from_the_store(hub: FakeHub, tmp_path: Path) -> None:
    """With the hub gone, stored info is served stale and stored files still download; an
    offline proxy on the same store serves them too and says why anything else is missing."""
    sha = hub.commit_sha(MODEL)
    snippet = f"""
        api = hf.HfApi(endpoint=endpoint)
        result = [api.model_info({MODEL!r}).sha,
                  read_hex(download({MODEL!r}, "config.json", revision={sha!r}))]
    """
    config = hub.expect(MODEL, "config.json").content()
    store = tmp_path / "store"
    unpinned = {"unpinned": "allow"}  # repo info by branch: this test is not about pins
    async with hf_proxy(
        tmp_path, hub.url, ttl=0.0, store=store, egress_allow=(hub.cdn_url,), hf_data=unpinned
    ) as proxy:
        assert (await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "a"))).ok() == [
            sha,
            config.hex(),
        ]
        await hub.close()  # upstream unreachable from now on
        stale = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "b"))
        assert stale.ok() == [sha, config.hex()]
        async with ClientSession() as http:
            async with http.get(f"{proxy.endpoint}/api/models/{MODEL}") as r:
                assert r.status == 200
                assert "upstream failed" in r.headers["X-Airlock-Stale"]
    async with hf_proxy(tmp_path, hub.url, offline=True, store=store, hf_data=unpinned) as proxy:
        offline = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "c"))
        assert offline.ok() == [sha, config.hex()]
        missing = await run_hf(
            f"result = download({MODEL!r}, 'README.md', revision={sha!r})",
            hf_env(proxy.endpoint, tmp_path / "d"),
        )
        assert missing.error is not None
        assert "offline mode is on" in missing.error.message
    stored = LocalBlobStore(store).path(Digest(hashlib.sha256(config).hexdigest()))
    assert stored is not None, "the store holds no blob with the sha256 of the hub's config"
    assert stored.read_bytes() == config  # stored content is what the hub served
