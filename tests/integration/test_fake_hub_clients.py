"""The stand-in hub is faithful: the real huggingface_hub client works against it unchanged.

Client calls run in a child process (the client reads its settings at import time).
Everything is local; one 200 MB download in total.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.fakes.hf_fixtures import (
    BIG_FILE,
    BIG_MODEL,
    DATASET,
    GATED_MODEL,
    LEGACY_CANONICAL,
    LEGACY_MODEL,
    MODEL,
    OTHER_TOKEN,
    READ_TOKEN,
    RENAMED_MODEL,
    SPACE,
)
from tests.fakes.hf_http import DropRule
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_repos import RepoType
from tests.fakes.hf_testing import MIB, client, git_blob_sha1


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub() as running:
        yield running


# ---- the real client -----------------------------------------------------------------------------


async def test_hf_hub_download_by_branch_commit_tag_and_pr(hub: FakeHub, tmp_path: Path) -> None:
    old = hub.commit_sha(MODEL, "v1.0")
    run = await client(
        hub,
        tmp_path,
        f"""
        def read(filename, **kw):
            return bytes.fromhex(read_hex(download({MODEL!r}, filename, **kw))).decode()
        repo_dir = os.path.join(cache_dir, "models--acme--tiny-model")
        result = {{
            "main": read(filename="config.json"),
            "sha": read(filename="config.json", revision={old!r}),
            "tag": read(filename="notes v1.txt", subfolder="sub/dir", revision="v1.0"),
            "pr": read(filename="config.json", revision="refs/pr/1"),
            "blobs": sorted(os.listdir(os.path.join(repo_dir, "blobs"))),
            "ref": open(os.path.join(repo_dir, "refs", "main")).read(),
        }}
        """,
    )
    out = run.ok()
    assert isinstance(out, dict)
    assert out["main"] == hub.expect(MODEL, "config.json").content().decode()
    assert out["sha"] == hub.expect(MODEL, "config.json", old).content().decode()
    assert out["tag"] == hub.expect(MODEL, "sub/dir/notes v1.txt", "v1.0").content().decode()
    assert out["pr"] == hub.expect(MODEL, "config.json", "refs/pr/1").content().decode()
    assert out["ref"] == hub.commit_sha(MODEL)
    etags = {hub.expect(MODEL, "config.json", rev).etag for rev in ("main", "v1.0", "refs/pr/1")}
    assert set(out["blobs"]) == etags | {hub.expect(MODEL, "sub/dir/notes v1.txt").etag}
    paths = {r.path for r in hub.requests.filter(method="HEAD")}
    assert f"/{MODEL}/resolve/refs%2Fpr%2F1/config.json" in paths
    assert f"/{MODEL}/resolve/v1.0/sub/dir/notes%20v1.txt" in paths


async def test_lfs_download_through_cdn_drops_the_token(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode.lfs_redirect = True
    expected = hub.expect(MODEL, "model.safetensors")
    run = await client(
        hub,
        tmp_path,
        f"""
        path = download({MODEL!r}, "model.safetensors")
        result = [read_hex(path), os.path.basename(os.path.realpath(path))]
        """,
        token=READ_TOKEN,
    )
    content, blob_name = run.ok()
    assert bytes.fromhex(content) == expected.content()
    assert blob_name == expected.sha256
    (head,) = hub.requests.filter(server="hub", method="HEAD")
    assert head.status == 302
    assert head.headers["authorization"] == f"Bearer {READ_TOKEN}"
    (cdn_get,) = hub.requests.filter(server="cdn", method="GET")
    assert "authorization" not in cdn_get.headers
    assert hub.requests.count(server="hub", method="GET") == 0


async def test_snapshot_download_model_and_dataset(hub: FakeHub, tmp_path: Path) -> None:
    run = await client(
        hub,
        tmp_path,
        f"""
        def files(root):
            found = [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]
            return {{os.path.relpath(p, root): read_hex(p) for p in found}}
        result = [
            files(hf.snapshot_download({MODEL!r}, cache_dir=cache_dir)),
            files(hf.snapshot_download({DATASET!r}, repo_type="dataset", cache_dir=cache_dir)),
        ]
        """,
    )
    model_files, dataset_files = run.ok()
    cases: list[tuple[str, RepoType, dict[str, str]]] = [
        (MODEL, "model", model_files),
        (DATASET, "dataset", dataset_files),
    ]
    for repo_id, repo_type, got in cases:
        head = hub.repo(repo_id, repo_type).head
        assert {p: bytes.fromhex(h) for p, h in got.items()} == {
            p: f.read() for p, f in head.files.items()
        }
    sha = hub.commit_sha(MODEL)
    assert hub.requests.count(path=f"/api/models/{MODEL}/revision/main") == 1
    (tree,) = hub.requests.filter(path=f"/api/models/{MODEL}/tree/{sha}")
    assert tree.query == "recursive=true&expand=false"
    assert hub.requests.count(path_contains=f"/datasets/{DATASET}/resolve/", method="HEAD") == 4


async def test_repo_info_calls(hub: FakeHub, tmp_path: Path) -> None:
    run = await client(
        hub,
        tmp_path,
        f"""
        api = hf.HfApi(endpoint=endpoint)
        m = api.model_info({MODEL!r}, files_metadata=True)
        refs = api.list_repo_refs({MODEL!r}, include_pull_requests=True)
        result = {{
            "model": [m.id, m._id, m.sha, m.created_at.isoformat(), m.author, m.private, m.gated],
            "lfs": {{s.rfilename: s.lfs.sha256 for s in m.siblings if s.lfs}},
            "blob_ids": {{s.rfilename: s.blob_id for s in m.siblings}},
            "pr": api.model_info({MODEL!r}, revision="refs/pr/1").sha,
            "dataset": [api.dataset_info({DATASET!r}).sha, api.dataset_info({DATASET!r}).id],
            "space": [api.space_info({SPACE!r}).sdk, api.space_info({SPACE!r}).runtime.stage],
            "legacy": api.model_info({LEGACY_MODEL!r}).id,
            "gated": api.model_info({GATED_MODEL!r}).gated,
            "refs": [[b.name for b in refs.branches], [t.name for t in refs.tags],
                     [p.target_commit for p in refs.pull_requests]],
            "commits": [c.commit_id for c in api.list_repo_commits({MODEL!r})],
            "exists": [
                api.repo_exists({MODEL!r}),
                api.repo_exists("acme/nope"),
                api.file_exists({MODEL!r}, "config.json"),
                api.revision_exists({MODEL!r}, "nope"),
            ],
        }}
        """,
    )
    out = run.ok()
    assert isinstance(out, dict)
    repo = hub.repo(MODEL)
    assert out["model"] == [
        MODEL,
        repo.object_id,
        repo.head.oid,
        repo.created_at.isoformat(),
        "acme",
        False,
        False,
    ]
    assert int(repo.object_id[:8], 16) == int(repo.created_at.timestamp())
    assert out["lfs"] == {"model.safetensors": hub.expect(MODEL, "model.safetensors").sha256}
    assert out["blob_ids"]["config.json"] == hub.expect(MODEL, "config.json").blob_sha1
    assert out["pr"] == hub.commit_sha(MODEL, "refs/pr/1")
    assert out["dataset"] == [hub.commit_sha(DATASET, repo_type="dataset"), DATASET]
    assert out["space"] == ["gradio", "RUNNING"]
    assert out["legacy"] == LEGACY_CANONICAL
    assert out["gated"] == "manual"
    assert out["refs"] == [["main"], ["v1.0"], [hub.commit_sha(MODEL, "refs/pr/1")]]
    assert out["commits"] == [c.oid for c in repo.history(repo.head)]
    assert out["exists"] == [True, False, True, False]
    assert hub.requests.count(path=f"/api/models/{MODEL}/revision/refs%2Fpr%2F1") == 1


async def test_tree_listing_paged_and_paths_info(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode.tree_page_size = 2
    run = await client(
        hub,
        tmp_path,
        f"""
        api = hf.HfApi(endpoint=endpoint)
        tree = list(api.list_repo_tree({MODEL!r}, recursive=True))
        sub = list(api.list_repo_tree({MODEL!r}, "sub/dir", revision="v1.0", expand=True))
        info = api.get_paths_info({MODEL!r}, ["config.json", "sub", "missing.txt"], revision="v1.0")
        result = {{
            "tree": [[type(e).__name__, e.path] for e in tree],
            "files": api.list_repo_files({MODEL!r}),
            "sub": [[e.path, e.last_commit.oid, e.security.safe] for e in sub],
            "info": [[type(e).__name__, e.path, vars(e).get("blob_id") or e.tree_id] for e in info],
        }}
        """,
    )
    out = run.ok()
    assert isinstance(out, dict)
    head = hub.repo(MODEL).head
    assert out["tree"] == [
        ["RepoFolder" if e.__class__.__name__ == "Folder" else "RepoFile", e.path]
        for e in head.children("", recursive=True)
    ]
    assert out["files"] == list(head.files)
    first = hub.commit_sha(MODEL, "v1.0")
    assert out["sub"] == [
        ["sub/dir/file.txt", first, True],
        ["sub/dir/notes v1.txt", first, True],
    ]
    v1 = hub.repo(MODEL).commits[first]
    assert out["info"] == [
        ["RepoFile", "config.json", v1.files["config.json"].oid],
        ["RepoFolder", "sub", v1.folders["sub"]],
    ]
    pages = hub.requests.filter(path=f"/api/models/{MODEL}/tree/main")
    assert len(pages) >= 2 * 4  # 8 entries, 2 per page, listed twice
    assert any("cursor=" in p.query for p in pages)
    assert hub.requests.count(path=f"/api/models/{MODEL}/tree/v1.0/sub%2Fdir") == 1
    (paths_info,) = hub.requests.filter(method="POST")
    assert paths_info.headers["content-type"].startswith("application/x-www-form-urlencoded")


async def test_ranged_read_with_hf_file_system(hub: FakeHub, tmp_path: Path) -> None:
    expected = hub.expect(MODEL, "model.safetensors")
    run = await client(
        hub,
        tmp_path,
        f"""
        fs = hf.HfFileSystem(endpoint=endpoint)
        result = fs.cat_file({MODEL!r} + "/model.safetensors", start=8, end=24).hex()
        """,
    )
    assert bytes.fromhex(str(run.ok())) == expected.content()[8:24]
    ranged = [r for r in hub.requests.filter(method="GET", file="model.safetensors")]
    # HfFileSystem reads ahead up to its block size, but always with a bounded Range
    assert [(r.headers.get("range"), r.status) for r in ranged] == [
        (f"bytes=8-{expected.size - 1}", 206)
    ]


async def test_client_errors_map_to_hub_exceptions(hub: FakeHub, tmp_path: Path) -> None:
    async def fails(call: str, token: str | None = None) -> tuple[list[str], str]:
        run = await client(hub, tmp_path, f"result = {call}", token=token)
        assert run.error is not None, run.result
        return run.error.classes, run.error.message

    classes, message = await fails("download('acme/nope', 'config.json')")
    assert "RepositoryNotFoundError" in classes
    assert "Invalid username or password." in message
    classes, message = await fails(f"download({MODEL!r}, 'nope.txt')")
    assert "RemoteEntryNotFoundError" in classes
    assert "Entry Not Found" in message
    classes, message = await fails(f"download({MODEL!r}, 'config.json', revision='v9')")
    assert "RevisionNotFoundError" in classes
    assert "Invalid rev id: v9" in message
    classes, message = await fails(f"download({GATED_MODEL!r}, 'config.json')", OTHER_TOKEN)
    assert "GatedRepoError" in classes
    assert "not in the authorized list" in message
    classes, message = await fails(
        "hf.HfApi(endpoint=endpoint).model_info('acme/nope')", OTHER_TOKEN
    )
    assert "RepositoryNotFoundError" in classes
    assert "404 Client Error" in message  # "Repository not found" is folded into the text
    # EntryNotFound carried X-Repo-Commit: the client wrote its negative cache
    no_exist = tmp_path / "hub" / "models--acme--tiny-model" / ".no_exist" / hub.commit_sha(MODEL)
    assert (no_exist / "nope.txt").exists()


async def test_legacy_name_download_follows_relative_redirect(hub: FakeHub, tmp_path: Path) -> None:
    run = await client(
        hub,
        tmp_path,
        f"result = open(download({LEGACY_MODEL!r}, 'config.json')).read()",
    )
    assert run.ok() == hub.expect(LEGACY_CANONICAL, "config.json").content().decode()
    assert hub.requests.count(path=f"/{LEGACY_MODEL}/resolve/main/config.json", status=307) >= 1


async def test_namespace_reuse_changes_identity(hub: FakeHub, tmp_path: Path) -> None:
    old = hub.repo(MODEL)
    fresh = hub.recreate_repo(MODEL)
    assert fresh.object_id != old.object_id
    assert fresh.created_at > old.last_modified
    assert not set(fresh.commits) & set(old.commits)
    taken_over = hub.recreate_repo(RENAMED_MODEL)  # old name of a transferred repo re-registered
    run = await client(
        hub,
        tmp_path,
        f"""
        api = hf.HfApi(endpoint=endpoint)
        m = api.model_info({MODEL!r})
        try:
            download({MODEL!r}, "config.json", revision={old.head.oid!r})
            old_sha = "served"
        except hf.errors.RevisionNotFoundError:
            old_sha = "RevisionNotFound"
        renamed = api.model_info({RENAMED_MODEL!r}).id
        result = [m._id, m.created_at.isoformat(), m.sha, old_sha, renamed]
        """,
    )
    assert run.ok() == [
        fresh.object_id,
        fresh.created_at.isoformat(),
        fresh.head.oid,
        "RevisionNotFound",
        taken_over.repo_id,
    ]
    assert (
        datetime.fromtimestamp(int(fresh.object_id[:8], 16), fresh.created_at.tzinfo)
        == fresh.created_at
    )


async def test_corrupt_bytes_pass_the_client_size_check(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode.corrupt_paths = {"config.json"}
    expected = hub.expect(MODEL, "config.json")
    snippet = f"result = read_hex(download({MODEL!r}, 'config.json'))"
    got = bytes.fromhex(str((await client(hub, tmp_path, snippet)).ok()))
    assert len(got) == expected.size
    assert git_blob_sha1(got) != expected.etag  # only a verifying proxy notices
    # the second call finds blobs/<etag> and does not fetch the body again
    await client(hub, tmp_path, snippet)
    assert hub.requests.body_fetches("config.json", MODEL) == 1
    assert hub.requests.count(method="HEAD", file="config.json") == 2


async def test_xet_triggers_reach_the_token_endpoint(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode.xet = True
    hub.mode.xet_token_status = 403
    disabled = await client(
        hub,
        tmp_path / "plain",
        f"result = read_hex(download({MODEL!r}, 'model.safetensors'))",
    )
    assert bytes.fromhex(str(disabled.ok())) == hub.expect(MODEL, "model.safetensors").content()
    assert hub.requests.count(path_contains="/xet-read-token/") == 0
    hub.requests.clear()
    enabled = await client(
        hub,
        tmp_path / "xet",
        f"result = hf.snapshot_download({MODEL!r}, cache_dir=cache_dir)",
        xet=True,
    )
    assert enabled.error is not None
    assert "403 Forbidden" in enabled.error.message
    assert hub.requests.count(path_contains="/xet-read-token/") == 1
    # xetHash in the cached tree listing makes snapshot_download skip the HEAD entirely
    assert hub.requests.count(method="HEAD", file="model.safetensors") == 0


async def test_large_file_resumes_after_a_dropped_connection(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode.lfs_redirect = True
    hub.mode.drop = DropRule(path=BIG_FILE, after_bytes=25 * MIB + 123, times=1)
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    assert expected.size >= 200 * 1000 * 1000
    run = await client(
        hub,
        tmp_path,
        f"""
        import hashlib
        path = download({BIG_MODEL!r}, {BIG_FILE!r})
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        result = [digest.hexdigest(), os.path.getsize(path)]
        """,
    )
    assert run.ok() == [expected.sha256, expected.size]
    gets = hub.requests.filter(server="cdn", method="GET", file=BIG_FILE)
    assert [(g.status, g.headers.get("range")) for g in gets] == [
        (200, None),
        (206, f"bytes={20 * MIB}-"),  # resumes at the client's last 10 MiB boundary
    ]
    assert gets[0].body_bytes == 25 * MIB + 123
    assert gets[1].body_bytes == expected.size - 20 * MIB
