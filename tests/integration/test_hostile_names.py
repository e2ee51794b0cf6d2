"""File names with path tricks from a hostile upstream (issue #11): ``../x``, ``%2e%2e/x``,
``/etc/passwd``, backslashes, NUL, a 5,000-character name and a wheel name that does not parse,
in index pages (PEP 691 JSON and PEP 503 HTML) and in hub tree listings and siblings.

Required: the proxy never answers 500; every URL it hands out for such a name stays inside the
project's files (rendered URLs are quoted with no safe characters) and is refused (4xx) or gives
the right bytes; pip installs the one real file; a hub client gets an error for the repo's
tricks and the right bytes for its real file; the store holds only right content, and nothing
is written next to the test's directory (its parent is listed before and after).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

from aiohttp import ClientSession, web
from structlog.testing import capture_logs

from proxy.settings import UpstreamSettings
from tests.clients import pip_install
from tests.conftest import ProxyFactory
from tests.fakes.dists import wheel
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo
from tests.fakes.hostile import HostileUpstream, Tamper
from tests.fakes.hostile_hub import store_problems
from tests.fakes.pypi_index import FakeIndex

LONG = "tricks-9.0-" + "a" * 5000 + "-py3-none-any.whl"
TRICKS = [
    "../tricks-9.0-py3-none-any.whl",
    "%2e%2e/tricks-9.0-py3-none-any.whl",
    "/etc/passwd",
    "..\\tricks-9.0-py3-none-any.whl",
    "tricks-9.0\x00-py3-none-any.whl",
    LONG,
    "tricks-not-a-version.whl",
    "tricks.whl",
]
NEEDLES = ("passwd", "tricks-9.0", "tricks.whl", "not-a-version")


def _no_500(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e.get("status") == 500 or e.get("event") == "unhandled_error"]


def _strays(root: Path, keep: set[Path]) -> list[Path]:
    """Files under `root` whose name carries a trick, outside the directories in `keep`."""
    return [
        p
        for p in root.rglob("*")
        if any(n in p.name for n in NEEDLES) and not any(k in p.parents for k in keep)
    ]


async def test_index_file_names_with_path_tricks(start_proxy: ProxyFactory, tmp_path: Path) -> None:
    real = wheel("tricks", "1.0")
    index = FakeIndex()
    index.add(real)
    parent_before = sorted(p.name for p in tmp_path.parent.iterdir())

    async def page_json(request: web.Request) -> web.StreamResponse:
        # every trick points at the real file with its real hash: a fetch would verify
        row = {"url": f"../../files/{real.filename}", "hashes": {"sha256": real.sha256}}
        row["upload-time"] = "2020-01-01T00:00:00.000000Z"
        files = [row | {"filename": real.filename}] + [row | {"filename": t} for t in TRICKS]
        body = {"meta": {"api-version": "1.1"}, "name": "tricks", "files": files}
        return web.json_response(body, content_type="application/vnd.pypi.simple.v1+json")

    async def page_html(request: web.Request) -> web.StreamResponse:
        # in HTML the name is the URL's last segment, decoded: the tricks ride in the href
        hrefs = [f"../../files/{real.filename}"] + [
            "../../files/" + quote(t, safe="") for t in TRICKS
        ]
        hrefs += ["../../files/%2e%2e%2ftricks-9.0-py3-none-any.whl", "../../files/x%00.whl"]
        rows = "".join(f'<a href="{h}#sha256={real.sha256}">x</a>' for h in hrefs)
        return web.Response(text=f"<html><body>{rows}</body></html>", content_type="text/html")

    statuses: dict[str, int] = {}
    names: dict[tuple[str, str], list[str]] = {}
    async with index.running(), HostileUpstream(index.url).running() as bad:
        bad.override("/simple/tricks/", page_json)
        bad.override("/simple/tricks-html/", page_html)
        with capture_logs() as logs:
            proxy = await start_proxy(UpstreamSettings(name="bad", url=f"{bad.url}/simple/"))
            run = await pip_install(
                proxy.simple, "tricks", target=tmp_path / "t", home=tmp_path / "home"
            )
            async with ClientSession() as http:
                for project, accept in (
                    ("tricks", "application/vnd.pypi.simple.v1+json"),
                    ("tricks", "text/html"),
                    ("tricks-html", "application/vnd.pypi.simple.v1+json"),
                ):
                    page_url = f"{proxy.simple}{project}/"
                    async with http.get(page_url, headers={"Accept": accept}) as r:
                        assert r.status == 200, (project, r.status, await r.text())
                        text = await r.text()
                    if "json" in accept:
                        hrefs = [f["url"] for f in json.loads(text)["files"]]
                    else:
                        hrefs = [h.split('"')[0] for h in text.split('href="')[1:]]
                    names[(project, accept)] = [h.split("#")[0].rsplit("/", 1)[-1] for h in hrefs]
                    files = f"../../files/{project}/"
                    direct = [files + quote(t, safe="") for t in TRICKS]  # asked for anyway
                    for href in [h.split("#")[0] for h in hrefs] + direct:
                        url = urljoin(page_url, href)
                        assert url.startswith(f"{proxy.url}/pypi/files/{project}/"), url
                        async with http.get(url) as r:
                            statuses[url] = r.status
                            body = await r.read()
                        if r.status == 200:
                            assert hashlib.sha256(body).hexdigest() == real.sha256, url
    assert run.returncode == 0, run.output
    installed = tmp_path / "t" / "tricks" / "__init__.py"
    assert installed.read_text() == "__version__ = '1.0'\n"
    assert not [u for u, s in statuses.items() if s >= 500], statuses
    # names no download could ask for are left out of the pages (and the log says so); the
    # ones that do not parse as a wheel are listed (pip skips them) and verified if fetched
    listed = [real.filename, "tricks-not-a-version.whl", "tricks.whl"]
    assert names[("tricks", "application/vnd.pypi.simple.v1+json")] == listed, names
    assert names[("tricks", "text/html")] == listed, names
    assert names[("tricks-html", "application/vnd.pypi.simple.v1+json")] == listed, names
    skipped = [e for e in logs if e.get("event") == "upstream_files_skipped"]
    assert {e["project"]: e["count"] for e in skipped} == {"tricks": 6, "tricks-html": 8}
    refused = [u for u, s in statuses.items() if s == 400]
    assert len(refused) == 6 * 2, statuses  # asked for directly (2 projects): the router
    assert _no_500(logs) == []
    allowed = {real.sha256, hashlib.sha256(real.metadata or b"").hexdigest()}
    assert await store_problems(tmp_path / "store", allowed) == []
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == parent_before
    assert _strays(tmp_path, keep=set()) == []


# ---- hub ---------------------------------------------------------------------------------------

REPO = "hostile/names"
CONFIG = b'{"model_type": "gpt2", "n_embd": 8}\n'
HUB_TRICKS = [
    "../x.bin",
    "%2e%2e/x.bin",
    "/etc/passwd",
    "sub/../../x.bin",
    "a\\..\\x.bin",
    "x\x00.bin",
    "n" * 5000 + ".bin",
]


def _tricky_tree(body: bytes) -> bytes:
    entries = json.loads(body)
    model = next(e for e in entries if e["path"] == "config.json")
    entries += [model | {"path": p} for p in HUB_TRICKS]  # real facts under tricky names
    return json.dumps(entries).encode()


def _tricky_siblings(body: bytes) -> bytes:
    info = json.loads(body)
    info["siblings"] += [{"rfilename": p} for p in HUB_TRICKS]
    return json.dumps(info).encode()


SNAPSHOT = """
out = {}
try:
    root = hf.snapshot_download(REPO, revision=COMMIT, cache_dir=cache_dir)
    out["snapshot"] = ["ok", sorted(os.listdir(root))]
except Exception as e:
    out["snapshot"] = ["error", type(e).__name__, str(e)[:300]]
out["config"] = open(download(REPO, "config.json", revision=COMMIT)).read()
result = out
"""


async def test_hub_paths_with_tricks_in_tree_and_siblings(tmp_path: Path) -> None:
    repo = build_repo(
        "model",
        REPO,
        [{".gitattributes": GITATTRIBUTES, "config.json": CONFIG}],
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    commit = repo.head.oid
    parent_before = sorted(p.name for p in tmp_path.parent.iterdir())
    statuses: dict[str, int] = {}
    async with start_fake_hub(repos=[repo]) as hub, HostileUpstream(hub.url).running() as bad:
        bad.tamper(Tamper(f"/api/models/{REPO}/tree/", times=10**6, edit=_tricky_tree))
        bad.tamper(Tamper(f"/api/models/{REPO}/revision/", times=10**6, edit=_tricky_siblings))
        with capture_logs() as logs:
            async with hf_proxy(tmp_path, bad.url) as proxy:
                env = hf_env(proxy.endpoint, tmp_path / "client")
                head = f"REPO, COMMIT = {REPO!r}, {commit!r}\n"
                out = (await run_hf(head + SNAPSHOT, env)).ok()
                async with ClientSession() as http:
                    for path in HUB_TRICKS:
                        for raw in (quote(path), quote(path, safe="")):
                            url = f"{proxy.endpoint}/{REPO}/resolve/{commit}/{raw}"
                            async with http.get(url) as r:
                                statuses[raw] = r.status
    assert out["config"] == CONFIG.decode()
    # the client gets an error for the tricks, or skips them: never a file from outside
    snapshot = out["snapshot"]
    assert snapshot[0] == "error" or snapshot[1] == [".gitattributes", "config.json"], snapshot
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    assert _no_500(logs) == []
    allowed = {f.sha256 for f in repo.head.files.values()}
    assert await store_problems(tmp_path / "store", allowed) == []
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == parent_before
    assert _strays(tmp_path, keep=set()) == []
