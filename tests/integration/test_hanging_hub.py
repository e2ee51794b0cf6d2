"""A hanging hub (accepts, never answers) must not stall what is stored (issue #13, fault 1).

huggingface_hub downloads a snapshot pinned to a commit through a warm proxy whose repo info is
past its TTL: the stored info is answered at once (X-Airlock-Stale) while its revalidation
hangs, files come from the store; a commit new to the mirror still waits for the hub's answer
(the namespace-reuse check), within the deadlines, and fails closed naming only "hub".
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from proxy.hf import routes
from proxy.upstream_limits import UpstreamLimits
from tests.fakes.hanging import hanging_upstream
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_fixtures import MODEL
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy

WAIT_LONG = UpstreamLimits(first_byte=3600.0)  # revalidations stay pending for the test


def snapshot(sha: str) -> str:
    return f"""
        path = hf.snapshot_download({MODEL!r}, revision={sha!r}, cache_dir=cache_dir)
        files = sorted(
            os.path.relpath(os.path.join(d, f), path)
            for d, _, files in os.walk(path) for f in files
        )
        result = [hf.HfApi(endpoint=endpoint).model_info({MODEL!r}, revision={sha!r}).sha, files]
    """


async def test_cached_snapshot_does_not_wait_for_a_hanging_hub(tmp_path: Path) -> None:
    """snapshot_download at a commit completes from the store while the hub holds the
    revalidation of the repo info; the info answer says it is stale, naming only 'hub'."""
    store = tmp_path / "store"
    async with start_fake_hub(large_file_size=16) as hub:
        sha = hub.commit_sha(MODEL)
        async with hf_proxy(tmp_path, hub.url, store=store, egress_allow=(hub.cdn_url,)) as proxy:
            cold = await run_hf(snapshot(sha), hf_env(proxy.endpoint, tmp_path / "a"))
            files = cold.ok()
            assert files[0] == sha
            assert "config.json" in files[1]
    async with hanging_upstream() as hang:
        async with hf_proxy(tmp_path, hang.url, store=store, ttl=0.0, limits=WAIT_LONG) as proxy:
            warm = await run_hf(snapshot(sha), hf_env(proxy.endpoint, tmp_path / "b"))
            assert warm.ok() == files
            assert hang.accepted >= 1
            assert hang.open >= 1  # the revalidation is still waiting: nothing else did
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{proxy.endpoint}/api/models/{MODEL}/revision/{sha}") as r:
                    assert r.status == 200
                    stale = r.headers["X-Airlock-Stale"]
            assert (
                stale == "past its TTL; answered from the store while upstream hub is asked again"
            )
            assert hang.url.removeprefix("http://") not in stale
            assert hang.open >= 1


async def test_hub_breaker_opens_and_stored_info_says_so(tmp_path: Path) -> None:
    """Revalidations that time out open the hub's circuit: the stored info names it, and a
    repo never fetched fails at once with a 502 naming the hub, not its address."""
    store = tmp_path / "store"
    async with start_fake_hub(large_file_size=16) as hub:
        sha = hub.commit_sha(MODEL)
        async with hf_proxy(tmp_path, hub.url, store=store, egress_allow=(hub.cdn_url,)) as proxy:
            cold = await run_hf(snapshot(sha), hf_env(proxy.endpoint, tmp_path / "a"))
            assert cold.ok()[0] == sha
    limits = UpstreamLimits(first_byte=0.5, breaker_failures=1)
    info = f"/api/models/{MODEL}/revision/{sha}"
    async with hanging_upstream() as hang:
        # a read gap far beyond the test: only the first-byte deadline ends the revalidation
        async with hf_proxy(
            tmp_path, hang.url, store=store, ttl=0.0, timeout=3600.0, limits=limits
        ) as proxy:
            source = proxy.app[routes.SERVICE].source
            async with aiohttp.ClientSession() as s:
                async with s.get(proxy.endpoint + info) as r:
                    assert r.status == 200
                    assert "past its TTL" in r.headers["X-Airlock-Stale"]
                await source.settled()  # the revalidation timed out: the circuit is open
                async with s.get(proxy.endpoint + info) as r:
                    assert r.status == 200
                    stale = r.headers["X-Airlock-Stale"]
                assert stale.startswith("upstream failed, serving stored data: upstream hub")
                assert "timed out" in stale
                asked = hang.accepted
                await source.settled()
                async with s.get(f"{proxy.endpoint}/api/models/acme/never-seen") as r:
                    assert r.status == 502
                    text = await r.text()
                assert "upstream hub circuit open" in text
                assert hang.url.removeprefix("http://") not in text
            assert hang.accepted == asked  # not asked while open
