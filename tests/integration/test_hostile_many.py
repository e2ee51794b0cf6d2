"""A hostile upstream that lists 200,000 files (issue #11).

Index pages: a project page of 200,000 files, as PEP 691 JSON and as PEP 503 HTML, is refused
with the page limit named (``wire.MAX_PAGE_FILES``): the byte limit alone lets 64 MB of small
entries through (over a million files, each parsed, decided and rendered on the event loop, and
pip's own read timeout fires long before such a page is ready), so the bounded, explicit refusal
is the fail-closed answer.  The install fails with that reason, nothing of the page is stored,
and the proxy answers other requests while the page is still arriving (the hostile page holds
its last bytes until another install through the proxy has finished).

Hub listings: repo info with 200,000 siblings is served (nothing runs per sibling); a tree
listing that ignores paging and answers 200,000 entries in one document is refused with the
limit named (``hf.wire.MAX_LISTING_ENTRIES``; each entry would become a recorded file fact:
serving this one took the proxy ~20 s), so ``snapshot_download`` with ``allow_patterns`` fails
with that reason, nothing of the listing is recorded and the repo's files are still served.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from proxy.hf.wire import MAX_LISTING_ENTRIES
from proxy.pypi.wire import MAX_PAGE_FILES
from proxy.settings import UpstreamSettings
from tests.clients import Run, client_env, pip_install, run, uv_bin
from tests.conftest import ProxyFactory
from tests.fakes.dists import wheel
from tests.fakes.hf_client import hf0_python, hf_env, run_hf
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo
from tests.fakes.hostile import HostileUpstream, Tamper
from tests.fakes.hostile_hub import store_problems
from tests.fakes.pypi_index import FakeIndex

MANY = 200_000
UPLOADED = "2020-01-01T00:00:00.000000Z"


def _fake_sha(i: int) -> str:
    return hashlib.sha256(i.to_bytes(4, "big")).hexdigest()


def _json_rows(real_filename: str, real_sha: str) -> Iterator[bytes]:
    """A PEP 691 page of MANY files (one real wheel among them), in 1 MB pieces."""
    yield b'{"meta":{"api-version":"1.1"},"name":"many","files":['
    rows: list[str] = []
    for i in range(MANY):
        name = f"many-0.{i}-py3-none-any.whl"
        rows.append(
            json.dumps(
                {
                    "filename": name,
                    "url": f"../../files/{name}",
                    "hashes": {"sha256": _fake_sha(i)},
                    "upload-time": UPLOADED,
                }
            )
        )
        if len(rows) == 5000:
            yield (",".join(rows) + ",").encode()
            rows = []
    real = {"filename": real_filename, "url": f"../../files/{real_filename}"}
    yield (",".join([*rows, json.dumps(real | {"hashes": {"sha256": real_sha}})]) + "]}").encode()


def _html_rows(real_filename: str, real_sha: str) -> Iterator[bytes]:
    yield b"<!DOCTYPE html><html><body><h1>many</h1>\n"
    rows: list[str] = []
    for i in range(MANY):
        name = f"many-0.{i}-py3-none-any.whl"
        rows.append(f'<a href="../../files/{name}#sha256={_fake_sha(i)}">{name}</a><br/>\n')
        if len(rows) == 5000:
            yield "".join(rows).encode()
            rows = []
    rows.append(f'<a href="../../files/{real_filename}#sha256={real_sha}">{real_filename}</a>')
    yield ("".join(rows) + "</body></html>\n").encode()


def _held(
    chunks: Iterator[bytes], ctype: str, sent: asyncio.Event, release: asyncio.Event
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """All but the last piece at once (then `sent`); the last one only after `release`."""
    pieces = list(chunks)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": ctype})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in pieces[:-1]:
            await response.write(piece)
        sent.set()
        await release.wait()
        await response.write(pieces[-1])
        await response.write_eof()
        return response

    return handler


def _page_refusals(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if f"more than the limit of {MAX_PAGE_FILES}" in str(e)]


@pytest.mark.parametrize(
    ("client", "fmt"), [("pip", "json"), ("pip", "html"), ("uv", "json")], ids=str
)
async def test_a_page_of_200000_files_is_refused_by_count_while_others_are_served(
    client: str, fmt: str, start_proxy: ProxyFactory, tmp_path: Path
) -> None:
    real = wheel("many", "1.0")
    index = FakeIndex()
    index.add(real, wheel("tiny-lib", "1.0"))
    sent, release = asyncio.Event(), asyncio.Event()
    rows = _json_rows if fmt == "json" else _html_rows
    ctype = "application/vnd.pypi.simple.v1+json" if fmt == "json" else "text/html"
    home = tmp_path / "home"
    async with index.running(), HostileUpstream(index.url).running() as bad:
        bad.override("/simple/many/", _held(rows(real.filename, real.sha256), ctype, sent, release))
        upstream = UpstreamSettings(name="bad", url=f"{bad.url}/simple/")
        with capture_logs() as logs:
            proxy = await start_proxy(upstream)

            async def install(req: str, target: Path) -> Run:
                if client == "pip":  # no retries: pip would back off on each 5xx
                    return await pip_install(
                        proxy.simple,
                        req,
                        target=target,
                        home=home,
                        extra=("--retries", "0", "-vv"),  # -vv: the 502
                    )
                env = client_env(home) | {"UV_HTTP_RETRIES": "0"}  # 5xx retries: time only
                return await run(
                    uv_bin(), "pip", "install", "--no-cache", "--python", sys.executable,
                    "--index-url", proxy.simple, "--target", str(target), req, env=env,
                )  # fmt: skip

            many = asyncio.create_task(install("many", tmp_path / "many"))
            await sent.wait()  # the page is on its way: the proxy must still serve others
            ok = await install("tiny-lib", tmp_path / "ok")
            assert not many.done()  # (it cannot be: its page is not complete)
            release.set()
            refused = await many
    assert ok.returncode == 0, ok.output
    assert refused.returncode != 0, refused.output
    # uv prints the reason; pip only says "too many 502 error responses" (the log has it)
    shown = f"more than the limit of {MAX_PAGE_FILES}" if client == "uv" else "502 error"
    assert shown in refused.said, refused.output
    assert not list((tmp_path / "many").glob("many*")), "something of many was installed"
    assert (tmp_path / "ok" / "tiny_lib" / "__init__.py").exists()
    assert _page_refusals(logs), "no log event names the page limit"
    assert not [e for e in logs if e.get("status") == 500 or e.get("event") == "unhandled_error"]
    with sqlite3.connect(proxy.settings.store.path / "metadata.sqlite3") as db:
        stored = db.execute("SELECT name FROM pages").fetchall()
    assert ("many",) not in stored, stored


# ---- hub ---------------------------------------------------------------------------------------

HUB_REPO = "hostile/many"
CONFIG = b'{"model_type": "gpt2", "n_embd": 8}\n'


def _junk(i: int) -> dict[str, object]:
    return {"type": "file", "oid": f"{i:040x}", "size": 1, "path": f"junk/{i:06d}.txt"}


def _more_tree(body: bytes) -> bytes:
    entries = json.loads(body)
    assert isinstance(entries, list)
    entries += [_junk(i) for i in range(MANY)]
    return json.dumps(entries).encode()


def _more_siblings(body: bytes) -> bytes:
    info = json.loads(body)
    info["siblings"] += [{"rfilename": f"junk/{i:06d}.txt"} for i in range(MANY)]
    return json.dumps(info).encode()


SNAPSHOT = """
try:
    root = hf.snapshot_download(REPO, revision=COMMIT, allow_patterns=["config.json"],
                                cache_dir=cache_dir)
    result = ["ok", open(os.path.join(root, "config.json")).read()]
except Exception as e:
    result = ["error", type(e).__name__, str(e)]
"""


async def test_a_hub_listing_of_200000_entries_is_refused_by_count(tmp_path: Path) -> None:
    # 0.x reads the siblings of repo info, and the tree because there are more than 50,000;
    # 2.x lists the tree only and retries a 502 five times with backoff (~30 s): not run here
    repo = build_repo(
        "model",
        HUB_REPO,
        [{".gitattributes": GITATTRIBUTES, "config.json": CONFIG, "README.md": b"# many\n"}],
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    commit = repo.head.oid
    python = hf0_python()
    async with start_fake_hub(repos=[repo]) as hub, HostileUpstream(hub.url).running() as bad:
        bad.tamper(Tamper(f"/api/models/{HUB_REPO}/tree/", times=10**6, edit=_more_tree))
        bad.tamper(Tamper(f"/api/models/{HUB_REPO}/revision/", times=10**6, edit=_more_siblings))
        with capture_logs() as logs:
            async with hf_proxy(tmp_path, bad.url) as proxy:
                env = hf_env(proxy.endpoint, tmp_path / "client")
                head = f"REPO, COMMIT = {HUB_REPO!r}, {commit!r}\n"
                snippet = head + SNAPSHOT
                snap = await run_hf(snippet, env, python=python, timeout=240)

                other = await run_hf(  # 2.x: the proxy keeps serving the files
                    head + "result = open(download(REPO, 'config.json', revision=COMMIT)).read()",
                    env,
                )
    out = snap.ok()
    assert out[0] == "error", out
    assert f"more than the limit of {MAX_LISTING_ENTRIES}" in out[2], out
    assert other.ok() == CONFIG.decode()
    # the 200,000 siblings were served (nothing runs per sibling), the tree was refused
    assert [a for a in bad.log if "/revision/" in a.path and a.status == 200]
    assert [a for a in bad.log if "/tree/" in a.path and a.status == 200]
    assert [e for e in logs if e.get("event") == "upstream_listing_refused"]
    assert not [e for e in logs if e.get("status") == 500 or e.get("event") == "unhandled_error"]
    with sqlite3.connect(tmp_path / "store" / "metadata.sqlite3") as db:
        junk = db.execute("SELECT count(*) FROM hf_files WHERE path LIKE 'junk/%'").fetchone()
    assert junk == (0,), "file facts of the refused listing were recorded"
    assert await store_problems(tmp_path / "store", {hashlib.sha256(CONFIG).hexdigest()}) == []
