"""A hostile index's pages: above the proxy's page limit, and a gzip bomb sent although the
proxy never needs compression.  pip must fail cleanly (no wrong install), the proxy must stay
up and keep serving other projects, and nothing of the bad page may be stored."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from proxy.settings import UpstreamSettings
from proxy.upstream import MAX_PAGE_BYTES
from tests.clients import pip_install
from tests.conftest import ProxyFactory
from tests.fakes.dists import wheel
from tests.fakes.hostile import HostileUpstream, gzip_bomb, stream_response
from tests.fakes.pypi_index import FakeIndex

ROW = b'<a href="../../files/huge-1.0.tar.gz#sha256=' + b"0" * 64 + b'">huge-1.0.tar.gz</a><br/>\n'


async def _gigantic(request: web.Request) -> web.StreamResponse:
    rows = (MAX_PAGE_BYTES + len(ROW)) // len(ROW) + 1000  # just past the limit
    chunk = ROW * 1000
    return await stream_response(
        request, (chunk for _ in range(rows // 1000 + 1)), content_type="text/html"
    )


async def _bomb(request: web.Request) -> web.StreamResponse:
    body = gzip_bomb(2 * MAX_PAGE_BYTES)  # ~130 KB on the wire
    return web.Response(
        body=body, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
    )


async def test_gigantic_and_bomb_pages_fail_cleanly(
    start_proxy: ProxyFactory, tmp_path: Path
) -> None:
    index = FakeIndex()
    index.add(wheel("tiny-lib", "1.0"))
    async with index.running(), HostileUpstream(index.url).running() as bad:
        bad.override("/simple/huge/", _gigantic)
        bad.override("/simple/bomb/", _bomb)
        proxy = await start_proxy(UpstreamSettings(name="bad", url=f"{bad.url}/simple/"))
        for name in ("huge", "bomb"):
            run = await pip_install(  # no retries: pip would back off on each 5xx
                proxy.simple,
                name,
                target=tmp_path / name,
                home=tmp_path / "home",
                extra=("--retries", "0"),
            )
            assert run.returncode != 0, run.output
            assert not (tmp_path / name).exists() or not any((tmp_path / name).iterdir())
        ok = await pip_install(
            proxy.simple, "tiny-lib", target=tmp_path / "ok", home=tmp_path / "home"
        )
        assert ok.returncode == 0, ok.output
    # the proxy fetched each bad page (and gave up on it); nothing of them was stored
    assert [a.path for a in bad.log if a.path.startswith("/simple/huge")]
    assert [a.path for a in bad.log if a.path.startswith("/simple/bomb")]
    stored = proxy.settings.store.path / "metadata.sqlite3"
    assert b"huge-1.0.tar.gz" not in stored.read_bytes()
