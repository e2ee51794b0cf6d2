"""The stand-in hub is faithful on the wire: headers, redirects, ranges, errors, links, Xet.

Checked with aiohttp directly; the real client runs in test_fake_hub_clients.py.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession

from tests.fakes.hf_fixtures import (
    GATED_MODEL,
    LEGACY_CANONICAL,
    LEGACY_MODEL,
    MODEL,
    OTHER_TOKEN,
    PRIVATE_MODEL,
    READ_TOKEN,
    RENAMED_MODEL,
)
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_testing import git_blob_sha1


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub() as running:
        yield running


# ---- wire level ----------------------------------------------------------------------------------


async def test_resolve_headers_use_git_and_lfs_identifiers(hub: FakeHub) -> None:
    main = hub.commit_sha(MODEL)
    async with ClientSession() as http:
        url = f"{hub.url}/{MODEL}/resolve/main/config.json"
        async with http.get(url) as resp:
            config = await resp.read()
            assert resp.status == 200
            assert resp.headers["X-Repo-Commit"] == main
            assert resp.headers["ETag"] == f'"{git_blob_sha1(config)}"'
            assert resp.headers["Content-Length"] == str(len(config))
            assert "X-Linked-Etag" not in resp.headers
        async with http.head(url) as head:
            assert head.headers["ETag"] == f'"{git_blob_sha1(config)}"'
            assert head.headers["Content-Length"] == str(len(config))

        url = f"{hub.url}/{MODEL}/resolve/{main}/model.safetensors"
        async with http.get(url) as resp:
            weights = await resp.read()
            sha256 = hashlib.sha256(weights).hexdigest()
            assert resp.headers["ETag"] == resp.headers["X-Linked-Etag"] == f'"{sha256}"'
            assert resp.headers["X-Linked-Size"] == str(len(weights))
        (length,) = struct.unpack("<Q", weights[:8])
        header = json.loads(weights[8 : 8 + length])
        assert header["weight"] == {"dtype": "F32", "shape": [4, 4], "data_offsets": [16, 80]}
        assert len(weights) == 8 + length + 80

        async with http.get(f"{hub.url}/api/models/{MODEL}/tree/main") as resp:
            tree = {e["path"]: e for e in await resp.json()}
        spec = "version https://git-lfs.github.com/spec/v1"
        pointer = f"{spec}\noid sha256:{sha256}\nsize {len(weights)}\n"
        lfs_entry = tree["model.safetensors"]
        assert lfs_entry["oid"] == git_blob_sha1(pointer.encode())
        assert lfs_entry["lfs"] == {
            "oid": sha256,
            "size": len(weights),
            "pointerSize": len(pointer),
        }
        assert tree["config.json"]["oid"] == git_blob_sha1(config)
        assert tree["sub"]["type"] == "directory"


async def test_lfs_redirect_goes_to_signed_cdn_url(hub: FakeHub) -> None:
    hub.mode.lfs_redirect = True
    expected = hub.expect(MODEL, "model.safetensors")
    async with ClientSession() as http:
        url = f"{hub.url}/{MODEL}/resolve/main/model.safetensors"
        async with http.head(url, allow_redirects=False) as head:
            assert head.status == 302
            location = head.headers["Location"]
            assert location.startswith(hub.cdn_url + "/repos/")
            assert head.headers["X-Linked-Size"] == str(expected.size)
            assert head.headers["X-Repo-Commit"] == expected.commit
        async with http.get(location) as resp:
            assert await resp.read() == expected.content()
            assert (
                resp.headers["ETag"] != f'"{expected.sha256}"'
            )  # CDN etags are not content hashes
        async with http.get(location.replace("Signature=", "Signature=0")) as resp:
            assert resp.status == 403
        # regular files are never redirected
        async with http.head(f"{hub.url}/{MODEL}/resolve/main/config.json") as head:
            assert head.status == 200
    assert hub.requests.body_fetches("model.safetensors", MODEL) == 1
    assert hub.requests.count(server="cdn", status=403) == 1


async def test_range_requests_are_exact(hub: FakeHub) -> None:
    expected = hub.expect(MODEL, "model.safetensors")
    data, size = expected.content(), expected.size
    url = f"{hub.url}/{MODEL}/resolve/main/model.safetensors"
    async with ClientSession() as http:
        for header, start, end in (
            ("bytes=2-5", 2, 6),
            ("bytes=10-", 10, size),
            ("bytes=-3", size - 3, size),
        ):
            async with http.get(url, headers={"Range": header}) as resp:
                assert resp.status == 206
                assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}"
                assert await resp.read() == data[start:end]
        async with http.get(url, headers={"Range": f"bytes={size}-"}) as resp:
            assert resp.status == 416
            assert resp.headers["Content-Range"] == f"bytes */{size}"
        hub.mode.ignore_range = True
        async with http.get(url, headers={"Range": "bytes=2-5"}) as resp:
            assert resp.status == 200
            assert await resp.read() == data


async def test_error_codes_and_access_control(hub: FakeHub) -> None:
    async def head(path: str, token: str | None = None) -> tuple[int, str | None, str | None]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.head(f"{hub.url}{path}", headers=headers, allow_redirects=False) as r:
            return r.status, r.headers.get("X-Error-Code"), r.headers.get("X-Error-Message")

    async with ClientSession() as http:
        assert await head("/acme/nope/resolve/main/x") == (
            401,
            "RepoNotFound",
            "Invalid username or password.",
        )
        assert (await head("/acme/nope/resolve/main/x", OTHER_TOKEN))[:2] == (404, "RepoNotFound")
        assert (await head(f"/{PRIVATE_MODEL}/resolve/main/config.json"))[:2] == (
            401,
            "RepoNotFound",
        )
        assert (await head(f"/{PRIVATE_MODEL}/resolve/main/config.json", READ_TOKEN))[0] == 200
        assert await head(f"/{MODEL}/resolve/nope/config.json") == (
            404,
            "RevisionNotFound",
            "Invalid rev id: nope",
        )
        assert (await head(f"/{MODEL}/resolve/main/nope.txt"))[:2] == (404, "EntryNotFound")
        assert await head(f"/{MODEL}/resolve/main/config.json", "hf_wrong") == (
            401,
            None,
            "Invalid credentials in Authorization header",
        )
        assert (await head(f"/{GATED_MODEL}/resolve/main/config.json"))[:2] == (401, "GatedRepo")
        assert (await head(f"/{GATED_MODEL}/resolve/main/config.json", OTHER_TOKEN))[:2] == (
            403,
            "GatedRepo",
        )
        assert (await head(f"/{GATED_MODEL}/resolve/main/config.json", READ_TOKEN))[0] == 200
        async with http.head(f"{hub.url}/{MODEL}/resolve/main/nope.txt") as r:
            assert r.headers["X-Repo-Commit"] == hub.commit_sha(MODEL)  # negative-cache hint
        for name in (LEGACY_MODEL, RENAMED_MODEL, MODEL.upper()):
            async with http.head(
                f"{hub.url}/{name}/resolve/refs%2Fpr%2F1/config.json", allow_redirects=False
            ) as r:
                assert r.status == 307
                canonical = LEGACY_CANONICAL if name == LEGACY_MODEL else MODEL
                assert r.headers["Location"] == f"/{canonical}/resolve/refs%2Fpr%2F1/config.json"


async def test_tree_links_are_absolute_and_paths_info_takes_json(hub: FakeHub) -> None:
    hub.mode.tree_page_size = 3
    async with ClientSession() as http:
        url = f"{hub.url}/api/models/{MODEL}/tree/refs%2Fpr%2F1?recursive=True&expand=False"
        async with http.get(url) as r:
            assert len(await r.json()) == 3
            link = r.headers["Link"]
        assert link.startswith(f"<{hub.url}/api/models/{MODEL}/tree/refs%2Fpr%2F1?recursive=true")
        assert link.endswith('>; rel="next"')
        body = {"paths": ["sub/dir", "config.json", "nope"], "expand": True}
        async with http.post(f"{hub.url}/api/models/{MODEL}/paths-info/v1.0", json=body) as r:
            entries = await r.json()
    v1 = hub.repo(MODEL).resolve("v1.0")
    assert v1 is not None
    assert [(e["type"], e["path"], e["oid"]) for e in entries] == [
        ("directory", "sub/dir", v1.folders["sub/dir"]),
        ("file", "config.json", v1.files["config.json"].oid),
    ]
    assert all(e["lastCommit"]["id"] == v1.oid for e in entries)


async def test_xet_advertisement_in_headers_and_json(hub: FakeHub) -> None:
    hub.mode.xet = True
    item = hub.expect(MODEL, "model.safetensors").file
    async with ClientSession() as http:
        async with http.head(f"{hub.url}/{MODEL}/resolve/main/model.safetensors") as r:
            assert r.headers["X-Xet-Hash"] == item.xet_hash
            assert 'rel="xet-auth"' in r.headers["Link"]
            assert 'rel="xet-reconstruction-info"' in r.headers["Link"]
        async with http.head(f"{hub.url}/{MODEL}/resolve/main/config.json") as r:
            assert "X-Xet-Hash" not in r.headers
        async with http.get(f"{hub.url}/api/models/{MODEL}/tree/main") as r:
            tree = {e["path"]: e for e in await r.json()}
            assert tree["model.safetensors"]["xetHash"] == item.xet_hash
            assert "xetHash" not in tree["config.json"]
        async with http.get(f"{hub.url}/api/models/{GATED_MODEL}/tree/main") as r:
            redacted = {e["path"]: e for e in await r.json()}["model.safetensors"]["xetHash"]
            assert redacted == "*" * 64
        token_url = f"{hub.url}/api/models/{MODEL}/xet-read-token/{hub.commit_sha(MODEL)}"
        async with http.get(token_url) as r:
            assert r.status == 200
            assert r.headers["X-Xet-Cas-Url"] == (await r.json())["casUrl"]
            assert int(r.headers["X-Xet-Token-Expiration"]) > 0
