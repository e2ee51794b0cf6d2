"""Real pip and uv install through the proxy from a local upstream index."""

from __future__ import annotations

from pathlib import Path

from proxy.pypi.routes import FILES
from tests.clients import pip_install, uv_install
from tests.conftest import Proxy
from tests.fakes.pypi_index import FakeIndex


def _installed(target: Path) -> set[str]:
    return {p.name for p in target.glob("*.dist-info")}


async def test_pip_installs_cold_then_warm_with_upstream_stopped(
    proxy: Proxy, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """Cold install fetches through the proxy; with the upstream gone the store serves it."""
    cold = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "t1", home=tmp_path)
    assert cold.returncode == 0, cold.output
    assert _installed(tmp_path / "t1") == {"tiny_app-2.0.dist-info", "tiny_lib-1.1.dist-info"}
    fetched = fake_index.requests["/files/tiny_lib-1.1-py3-none-any.whl"]
    assert fetched == 1

    await fake_index.stop()
    warm = await pip_install(proxy.simple, "tiny-app", target=tmp_path / "t2", home=tmp_path)
    assert warm.returncode == 0, warm.output
    assert _installed(tmp_path / "t2") == {"tiny_app-2.0.dist-info", "tiny_lib-1.1.dist-info"}


async def test_uv_installs_cold_then_warm_with_upstream_stopped(
    proxy: Proxy, fake_index: FakeIndex, tmp_path: Path
) -> None:
    cold = await uv_install(proxy.simple, "tiny-app", target=tmp_path / "t1", home=tmp_path)
    assert cold.returncode == 0, cold.output
    assert {"tiny_app-2.0.dist-info", "tiny_lib-1.1.dist-info"} <= _installed(tmp_path / "t1")

    await fake_index.stop()
    warm = await uv_install(proxy.simple, "tiny-app", target=tmp_path / "t2", home=tmp_path)
    assert warm.returncode == 0, warm.output
    assert {"tiny_app-2.0.dist-info", "tiny_lib-1.1.dist-info"} <= _installed(tmp_path / "t2")


async def test_pip_uses_synthesized_metadata_for_wheels_without_upstream_metadata(
    proxy: Proxy, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """tiny-dep's upstream offers no PEP 658 metadata: after the first download we do."""
    first = await pip_install(proxy.simple, "tiny-dep", target=tmp_path / "a", home=tmp_path)
    assert first.returncode == 0, first.output
    import aiohttp

    await proxy.app[FILES].settled()  # the extraction runs after the download completes
    async with aiohttp.ClientSession() as s:
        async with s.get(
            proxy.simple + "tiny-dep/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        ) as r:
            doc = await r.json(content_type=None)
        meta = doc["files"][0]["core-metadata"]
        assert set(meta) == {"sha256"}
        async with s.get(proxy.simple + "tiny-dep/" + doc["files"][0]["url"] + ".metadata") as r:
            body = await r.read()
    import hashlib

    assert hashlib.sha256(body).hexdigest() == meta["sha256"]
    assert b"Name: tiny-dep" in body
