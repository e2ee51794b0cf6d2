"""The Hub side of the proxy with the current huggingface_hub client: downloads, listings,
ranges, Xet stripping, hub-style errors.  Everything runs against the local stand-in hub."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.fakes.hf_client import ClientRun, hf_env, run_hf
from tests.fakes.hf_fixtures import DATASET, MODEL, READ_TOKEN, SPACE
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url, egress_allow=(hub.cdn_url,)) as running:
        yield running


async def client(
    proxy: HfProxy, home: Path, snippet: str, *, token: str | None = None, xet: bool = False
) -> ClientRun:
    return await run_hf(snippet, hf_env(proxy.endpoint, home, token=token, disable_xet=not xet))


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


async def test_download_by_sha__regular_and_lfs_via_cdn(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Files by full sha: verified, stored once, token only to the hub, never a CDN Location."""
    hub.mode.lfs_redirect = True
    sha = hub.commit_sha(MODEL)
    snippet = f"""
        cfg = download({MODEL!r}, "config.json", revision={sha!r})
        w = download({MODEL!r}, "model.safetensors", revision={sha!r})
        result = [read_hex(cfg), read_hex(w), os.path.basename(os.path.realpath(cfg)),
                  os.path.basename(os.path.realpath(w))]
    """
    got = (await client(proxy, tmp_path / "a", snippet, token=READ_TOKEN)).ok()
    config, weights = hub.expect(MODEL, "config.json"), hub.expect(MODEL, "model.safetensors")
    assert bytes.fromhex(got[0]) == config.content()
    assert bytes.fromhex(got[1]) == weights.content()
    assert got[2:] == [config.etag, weights.etag]  # blob names = the hub's own etags
    assert config.etag == git_blob_sha1(config.content())
    hub_requests = hub.requests.filter(server="hub")
    assert hub_requests
    assert all(r.headers.get("authorization") == f"Bearer {READ_TOKEN}" for r in hub_requests)
    cdn = hub.requests.filter(server="cdn")
    assert [r.method for r in cdn] == ["GET"]
    assert "authorization" not in cdn[0].headers
    # a second client (empty cache) is served from the store: no new upstream body fetch
    again = (await client(proxy, tmp_path / "b", snippet)).ok()
    assert again[:2] == got[:2]
    assert hub.requests.body_fetches("config.json", MODEL) == 1
    assert hub.requests.body_fetches("model.safetensors", MODEL) == 1
    store = proxy.settings.store.path / "blobs" / "sha256"
    assert (store / weights.sha256[:2] / weights.sha256[2:4] / weights.sha256).is_file()


async def test_branch_download_is_blocked_with_the_commit_to_pin(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Unpinned pulls are refused as GatedRepo with the reason and the commit to pin to."""
    sha = hub.commit_sha(MODEL)
    run = await client(proxy, tmp_path, f"result = download({MODEL!r}, 'config.json')")
    assert run.error is not None
    assert run.error.is_a("GatedRepoError")
    assert "Blocked by policy" in run.error.message
    assert f'revision="{sha}"' in run.error.message
    snap = await client(proxy, tmp_path, f"result = hf.snapshot_download({MODEL!r})")
    assert snap.error is not None
    assert "is a branch or tag, not a commit" in snap.error.message
    async with ClientSession() as http:
        url = f"{proxy.endpoint}/{MODEL}/resolve/main/config.json"
        async with http.head(url) as r:
            assert r.status == 403
            assert r.headers["X-Error-Code"] == "GatedRepo"
            assert r.headers["X-Error-Message"].startswith("Blocked by policy: revision 'main'")
            assert "X-Repo-Commit" not in r.headers
        async with http.get(url) as r:
            assert (await r.json())["error"] == r.headers["X-Error-Message"]
            assert "X-Repo-Commit" not in r.headers
    assert hub.requests.body_fetches("config.json") == 0


async def test_snapshots_of_model_dataset_and_a_space_file(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """snapshot_download by sha for a model and a dataset; a space file by sha."""
    msha, dsha = hub.commit_sha(MODEL), hub.commit_sha(DATASET, repo_type="dataset")
    ssha = hub.commit_sha(SPACE, repo_type="space")
    run = await client(
        proxy,
        tmp_path,
        f"""
        def files(root):
            found = [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]
            return {{os.path.relpath(p, root): read_hex(p) for p in found}}
        result = [
            files(hf.snapshot_download({MODEL!r}, revision={msha!r}, cache_dir=cache_dir)),
            files(hf.snapshot_download({DATASET!r}, repo_type="dataset", revision={dsha!r},
                                       cache_dir=cache_dir)),
            read_hex(download({SPACE!r}, "app.py", repo_type="space", revision={ssha!r})),
        ]
        """,
    )
    model_files, dataset_files, app_py = run.ok()
    for repo_id, kind, got in ((MODEL, "model", model_files), (DATASET, "dataset", dataset_files)):
        head = hub.repo(repo_id, kind).head  # type: ignore[arg-type]
        assert {p: bytes.fromhex(h) for p, h in got.items()} == {
            p: f.read() for p, f in head.files.items()
        }
    assert bytes.fromhex(app_py) == hub.expect(SPACE, "app.py", repo_type="space").content()


async def test_info_and_listings_with_paging_rebased_on_the_proxy(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """model/dataset/space info, list_repo_files, paged list_repo_tree, get_paths_info (by
    branch too: allowed here; the default policy refuses them, test_hf_unpinned.py)."""
    await proxy.set_hf_data({"unpinned": "allow"})
    hub.mode.tree_page_size = 2
    v1 = hub.commit_sha(MODEL, "v1.0")
    run = await client(
        proxy,
        tmp_path,
        f"""
        api = hf.HfApi(endpoint=endpoint)
        m = api.model_info({MODEL!r}, revision={v1!r}, files_metadata=True)
        tree = list(api.list_repo_tree({MODEL!r}, recursive=True))
        sub = list(api.list_repo_tree({MODEL!r}, "sub/dir", revision="v1.0"))
        info = api.get_paths_info({MODEL!r}, ["config.json", "sub", "nope"], revision="v1.0")
        result = {{
            "info": [api.model_info({MODEL!r}).sha, m.sha, m.id, m._id],
            "lfs": {{s.rfilename: s.lfs.sha256 for s in m.siblings if s.lfs}},
            "dataset": api.dataset_info({DATASET!r}).id,
            "space": api.space_info({SPACE!r}).sdk,
            "files": api.list_repo_files({MODEL!r}),
            "tree": [e.path for e in tree],
            "sub": [e.path for e in sub],
            "paths": [[type(e).__name__, e.path] for e in info],
        }}
        """,
    )
    out = run.ok()
    repo = hub.repo(MODEL)
    assert out["info"] == [repo.head.oid, v1, MODEL, repo.object_id]
    assert out["lfs"] == {"model.safetensors": hub.expect(MODEL, "model.safetensors").sha256}
    assert out["dataset"] == DATASET
    assert out["space"] == "gradio"
    assert out["files"] == list(repo.head.files)
    assert out["tree"] == [e.path for e in repo.head.children("", recursive=True)]
    assert out["sub"] == ["sub/dir/file.txt", "sub/dir/notes v1.txt"]
    assert out["paths"] == [["RepoFile", "config.json"], ["RepoFolder", "sub"]]
    assert any("cursor=" in r.query for r in hub.requests.filter(path_contains="/tree/"))
    async with ClientSession() as http:
        url = f"{proxy.endpoint}/api/models/{MODEL}/tree/main?recursive=True"
        async with http.get(url, headers={"Host": "mirror.example.test:8443"}) as r:
            link = r.headers["Link"]
    # absolute, built from the incoming Host, never the upstream's origin
    sha = repo.head.oid
    assert link.startswith(f"<http://mirror.example.test:8443/hf/api/models/{MODEL}/tree/{sha}?")
    assert link.endswith('>; rel="next"')
    assert hub.url not in link


async def test_xet_advertised_upstream_but_plain_http_through_the_proxy(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Xet headers, Link rels and xetHash are stripped; token endpoints refused."""
    hub.mode.xet = True
    hub.mode.lfs_redirect = True
    sha = hub.commit_sha(MODEL)
    run = await client(
        proxy,
        tmp_path,
        f"""
        root = hf.snapshot_download({MODEL!r}, revision={sha!r}, cache_dir=cache_dir)
        result = read_hex(os.path.join(root, "model.safetensors"))
        """,
        xet=True,  # hf_xet installed and enabled in the client
    )
    assert bytes.fromhex(str(run.ok())) == hub.expect(MODEL, "model.safetensors").content()
    assert hub.requests.count(path_contains="xet-read-token") == 0
    assert hub.requests.count(path_contains="/cas/") == 0
    async with ClientSession() as http:
        url = f"{proxy.endpoint}/{MODEL}/resolve/{sha}/model.safetensors"
        async with http.head(url, allow_redirects=False) as r:
            assert r.status == 200
            assert not [k for k in r.headers if k.lower().startswith("x-xet")]
            assert "xet" not in r.headers.get("Link", "")
            assert "Location" not in r.headers
            assert (
                r.headers["X-Linked-Etag"] == f'"{hub.expect(MODEL, "model.safetensors").sha256}"'
            )
        async with http.get(f"{proxy.endpoint}/api/models/{MODEL}/tree/{sha}") as r:
            assert "xetHash" not in await r.text()
        async with http.get(f"{proxy.endpoint}/api/models/{MODEL}/xet-read-token/{sha}") as r:
            assert r.status == 403
            assert "HF_HUB_DISABLE_XET" in r.headers["X-Error-Message"]


async def test_ranges_are_exact_from_a_running_fill_and_from_the_store(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """A first ranged request is served from the fill it starts; later ones from the store."""
    expected = hub.expect(MODEL, "model.safetensors")
    data, size = expected.content(), expected.size
    url = f"{proxy.endpoint}/{MODEL}/resolve/{expected.commit}/model.safetensors"
    async with ClientSession() as http:
        for header, start, end in (
            ("bytes=8-23", 8, 24),  # cold: this request starts the fill
            ("bytes=10-", 10, size),
            ("bytes=-3", size - 3, size),
        ):
            async with http.get(url, headers={"Range": header}) as r:
                assert r.status == 206
                assert r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}"
                assert await r.read() == data[start:end]
        async with http.get(url, headers={"Range": f"bytes={size}-"}) as r:
            assert r.status == 416
    run = await client(
        proxy,
        tmp_path,
        f"""
        fs = hf.HfFileSystem(endpoint=endpoint)
        name = {MODEL!r} + "@{expected.commit}/model.safetensors"
        result = fs.cat_file(name, start=8, end=24).hex()
        """,
    )
    assert bytes.fromhex(str(run.ok())) == data[8:24]
    assert hub.requests.body_fetches("model.safetensors") == 1


async def test_not_found_and_other_errors_in_hub_form(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """404s carry the hub's codes, so clients raise the same classes; PyPI stays plain."""
    sha = hub.commit_sha(MODEL)
    run = await client(
        proxy,
        tmp_path,
        f"""
        out = []
        for repo, rev, name in [("acme/nope", {sha!r}, "config.json"),
                                ({MODEL!r}, "0" * 40, "config.json"),
                                ({MODEL!r}, {sha!r}, "nope.txt")]:
            try:
                download(repo, name, revision=rev)
            except Exception as e:
                out.append(type(e).__name__)
        result = out
        """,
    )
    assert run.ok() == [
        "RepositoryNotFoundError",
        "RevisionNotFoundError",
        "RemoteEntryNotFoundError",
    ]
    async with ClientSession() as http:
        async with http.get(f"{proxy.endpoint}/api/agent-harnesses") as r:
            assert await r.json() == {}
        async with http.get(f"{proxy.endpoint}/api/models/{MODEL}/refs") as r:
            assert r.status == 404
            assert "X-Error-Code" not in r.headers
        async with http.get(f"{proxy.endpoint}/{MODEL}/resolve/main/..%2Fx") as r:
            assert r.status == 400
        async with http.get(f"{proxy.url}/pypi/simple/bad%20name/") as r:
            assert r.status == 400
            assert "X-Error-Code" not in r.headers
            assert r.content_type == "text/plain"
