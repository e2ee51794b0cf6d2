"""Denied files: resolvers fall back to allowed versions, downloads get 403, users see why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from proxy.settings import UpstreamSettings
from tests.clients import pip_install, uv_install
from tests.conftest import Proxy, ProxyFactory
from tests.fakes.pypi_index import FakeIndex

REASON = "CVE-2099-0001 remote code execution"


async def _proxy_denying(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, **kw: object
) -> Proxy:
    import json

    (policies_dir / "data" / "pypi.json").write_text(
        json.dumps({"deny_versions": {"tiny-lib": {"1.1": REASON}}})
    )
    return await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url), **kw)


async def test_denied_version_is_yanked_with_reason_and_download_refused(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path
) -> None:
    proxy = await _proxy_denying(start_proxy, fake_index, policies_dir)
    async with aiohttp.ClientSession() as s:
        async with s.get(
            proxy.simple + "tiny-lib/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ) as r:
            doc = await r.json(content_type=None)
        by_name = {f["filename"]: f for f in doc["files"]}
        assert by_name["tiny_lib-1.0-py3-none-any.whl"].get("yanked", False) is False
        yanked = by_name["tiny_lib-1.1-py3-none-any.whl"]["yanked"]
        assert REASON in yanked
        assert "deny-list" in yanked
        async with s.get(proxy.url + "/pypi/files/tiny-lib/tiny_lib-1.1-py3-none-any.whl") as r:
            assert r.status == 403
            assert r.reason is not None
            assert REASON in r.reason
            assert REASON in await r.text()
    # The refused file was never fetched from upstream.
    assert fake_index.requests["/files/tiny_lib-1.1-py3-none-any.whl"] == 0


async def test_hide_mode_leaves_denied_files_out_of_the_page(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path
) -> None:
    proxy = await _proxy_denying(start_proxy, fake_index, policies_dir, denied_files="hide")
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            page = await r.text()
        assert "tiny_lib-1.0-py3-none-any.whl" in page
        assert "tiny_lib-1.1" not in page
        async with s.get(proxy.url + "/pypi/files/tiny-lib/tiny_lib-1.1-py3-none-any.whl") as r:
            assert r.status == 403


async def test_pip_falls_back_to_allowed_version_and_shows_reason_when_pinned(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    proxy = await _proxy_denying(start_proxy, fake_index, policies_dir)
    ok = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert (tmp_path / "a" / "tiny_lib-1.0.dist-info").is_dir()

    pinned = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode != 0
    assert REASON in pinned.said, pinned.output
    assert "403" in pinned.output


async def test_uv_falls_back_to_allowed_version_and_shows_reason_when_pinned(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    proxy = await _proxy_denying(start_proxy, fake_index, policies_dir)
    ok = await uv_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert (tmp_path / "a" / "tiny_lib-1.0.dist-info").is_dir()

    pinned = await uv_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode != 0
    assert REASON in pinned.said, pinned.output


async def test_monitor_mode_logs_but_serves(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    from proxy.settings import PolicySettings

    proxy = await _proxy_denying(
        start_proxy,
        fake_index,
        policies_dir,
        policy=PolicySettings(path=policies_dir, mode="monitor", reload_interval=0),
    )
    pinned = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode == 0, pinned.output


async def test_page_decisions_survive_a_restart(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path
) -> None:
    """A second proxy on the same store serves the page from the kept decision: no evaluation."""
    from proxy.appkeys import ENGINE

    first = await _proxy_denying(start_proxy, fake_index, policies_dir)
    async with aiohttp.ClientSession() as s:
        async with s.get(first.simple + "tiny-lib/") as r:
            before = await r.text()
    second = await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url))
    engine = second.app[ENGINE]
    calls: list[object] = []
    real = engine.decide

    async def counting(subject: Any) -> Any:
        calls.append(subject)
        return await real(subject)

    engine.decide = counting  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as s:
        async with s.get(second.simple + "tiny-lib/") as r:
            after = await r.text()
    assert calls == []
    assert after == before
    assert REASON in after
