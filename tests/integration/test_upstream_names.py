"""Clients see upstream names, never upstream URLs (issue #11, item 6).

On a 502 or a stale answer the configured upstream's host:port appears in no header and no
body a client receives (pip, huggingface_hub, and every byte of the raw answers), while the
server log still has it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from proxy.pypi.routes import STORED_INDEX
from proxy.pypi.sources import StoredIndex
from proxy.settings import UpstreamSettings
from proxy.upstream_limits import UpstreamLimits
from tests.clients import pip_install
from tests.conftest import ProxyFactory
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_fixtures import DATASET, MODEL
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.pypi_index import FakeIndex


async def raw(url: str) -> tuple[int, str]:
    """Status, and every header and body byte of the answer as one text."""
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            body = await r.read()
            headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
            return r.status, f"{r.reason}\n{headers}\n{body.decode(errors='replace')}"


def logged(logs: list[MutableMapping[str, Any]], needle: str) -> bool:
    return any(needle in str(e.get("url", "")) for e in logs if e.get("event") == "upstream_failed")


async def test_pip__502_and_stale_answers_name_the_upstream_not_its_url(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """An upstream answering 503, then not answering at all: stale pages and 502s say
    'upstream fake …', and its host:port is only in the server log."""
    where = fake_index.url.removeprefix("http://")  # 127.0.0.1:<port>
    # internal: its pages carry no PEP 708 tracks URL (a public upstream's pages name it there);
    # no circuit breaker: every request must reach (and fail on) the upstream here
    no_breaker = UpstreamLimits(breaker_failures=1000)
    fake = UpstreamSettings(
        name="fake", url=fake_index.simple_url, kind="internal", limits=no_breaker
    )
    proxy = await start_proxy(fake, page_ttl=0)
    ok = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    for fault, words in (("down", "upstream fake answered 503"), ("stopped", "upstream fake")):
        if fault == "down":
            fake_index.faults.down = True
        else:
            await fake_index.stop()  # connection refused: the error text would name host:port
        with structlog.testing.capture_logs() as logs:
            stale = await pip_install(
                proxy.simple, "tiny-lib", target=tmp_path / fault, home=tmp_path, extra=("-v",)
            )
            assert stale.returncode == 0, stale.output  # the last good page, files from the store
            assert where not in stale.said
            failed = await pip_install(
                proxy.simple,
                "never-seen",
                target=tmp_path / f"{fault}-x",
                home=tmp_path,
                extra=("-v", "--retries", "0"),
            )
            assert failed.returncode != 0
            assert where not in failed.said
            stored = proxy.app[STORED_INDEX]
            assert isinstance(stored, StoredIndex)
            await stored.settled()  # the page's background revalidation has failed
            status, page = await raw(proxy.simple + "tiny-lib/")
            assert status == 200
            assert f"X-Airlock-Stale: upstream failed, serving last good page: {words}" in page
            assert where not in page
            status, answer = await raw(proxy.simple + "never-seen/")
            assert status == 502
            assert words in answer
            assert where not in answer
        assert logged(logs, where)  # the server log names the URL


async def test_hf__502_and_stale_answers_name_the_upstream_not_its_url(tmp_path: Path) -> None:
    """The hub gone: stale info and 502s say 'upstream hub …', never the hub's host:port."""
    async with start_fake_hub(large_file_size=16) as hub:
        where = hub.url.removeprefix("http://")
        snippet = f"result = hf.HfApi(endpoint=endpoint).model_info({MODEL!r}).sha"
        unpinned = {"unpinned": "allow"}  # repo info by branch: this test is not about pins
        async with hf_proxy(tmp_path, hub.url, ttl=0.0, hf_data=unpinned) as proxy:
            first = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "a"))
            assert first.ok() == hub.commit_sha(MODEL)
            await hub.close()
            with structlog.testing.capture_logs() as logs:
                stale = await run_hf(snippet, hf_env(proxy.endpoint, tmp_path / "b"))
                assert stale.ok() == hub.commit_sha(MODEL)
                failed = await run_hf(
                    f"result = hf.HfApi(endpoint=endpoint).dataset_info({DATASET!r}).sha",
                    hf_env(proxy.endpoint, tmp_path / "c"),
                )
                assert failed.error is not None
                assert "upstream hub unreachable" in failed.error.message
                assert where not in failed.error.message + failed.stdout + failed.stderr
                status, info = await raw(f"{proxy.endpoint}/api/models/{MODEL}")
                assert status == 200
                assert "X-Airlock-Stale: upstream failed, serving stored data: upstream hub" in info
                assert where not in info
                status, answer = await raw(f"{proxy.endpoint}/api/datasets/{DATASET}")
                assert status == 502
                assert "upstream hub unreachable: connection failed" in answer
                assert where not in answer
        assert logged(logs, where)
