"""Unpinned pulls through every door: an answer that shows what a branch or tag points to is
decided like a download by that branch.  With the shipped policy (``unpinned: "deny"``) it is
refused with the commit to pin; in ``resolve-approved`` mode it shows the approved commit only.

Real clients against the stand-in hub: huggingface_hub 2.x (and transformers' AutoConfig, which
reads ``sha`` from bare repo info and downloads by it) and the 0.x client of transformers 4.x.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from yarl import URL

from tests.fakes.hf_client import ClientRun, hf0_python, hf_env, run_hf
from tests.fakes.hf_fixtures import DATASET, MODEL
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy

# transformers knows no "tiny" model type; registering one lets AutoConfig load the fixture.
AUTO_CONFIG = """
from transformers import AutoConfig, PretrainedConfig
class TinyConfig(PretrainedConfig):
    model_type = "tiny"
AutoConfig.register("tiny", TinyConfig)
"""
# Every client call that asks the hub what a branch or tag points to, one result per call.
BRANCH_CALLS = f"""
api = hf.HfApi(endpoint=endpoint)
calls = {{
    "model_info": lambda: api.model_info({MODEL!r}).sha,
    "model_info_blobs": lambda: api.model_info({MODEL!r}, files_metadata=True).sha,
    "model_info_main": lambda: api.model_info({MODEL!r}, revision="main").sha,
    "download_default": lambda: download({MODEL!r}, "config.json"),
    "download_tag": lambda: download({MODEL!r}, "config.json", revision="v1.0"),
    "list_repo_files": lambda: api.list_repo_files({MODEL!r}),
    "list_repo_tree_tag": lambda: [e.path for e in api.list_repo_tree({MODEL!r}, revision="v1.0")],
    "paths_info": lambda: [e.path for e in api.get_paths_info({MODEL!r}, ["config.json"])],
    "snapshot": lambda: hf.snapshot_download({MODEL!r}, cache_dir=cache_dir),
}}
"""
RUN_CALLS = """
result = {}
for name, call in calls.items():
    try:
        result[name] = ["ok", call()]
    except Exception as e:
        result[name] = [type(e).__name__, str(e)]
"""


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url) as running:  # the shipped policy data, default ttl
        yield running


async def client(proxy: HfProxy, home: Path, snippet: str, *, hf0: bool = False) -> ClientRun:
    python = hf0_python() if hf0 else None
    return await run_hf(snippet, hf_env(proxy.endpoint, home), python=python)


def assert_pin_refusal(
    outcome: list[str], revision: str, sha: str, kind: str = "GatedRepoError"
) -> None:
    """The refusal the unpinned rule gives; transformers re-raises it as an OSError."""
    assert outcome[0] == kind, outcome
    message = outcome[1]
    assert f"Blocked by policy: revision '{revision}' of {MODEL} is a branch or tag" in message
    assert f"pin a commit: revision=\"{sha}\" is what '{revision}' points to now" in message
    assert "[unpinned]" in message


async def test_shipped_policy_refuses_every_answer_that_shows_a_branch(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Bare info, info/tree/paths-info/resolve at a branch or tag, snapshot, AutoConfig."""
    head, v1 = hub.commit_sha(MODEL), hub.commit_sha(MODEL, "v1.0")
    auto = f"calls['auto_config'] = lambda: AutoConfig.from_pretrained({MODEL!r}).to_dict()\n"
    snippet = AUTO_CONFIG + BRANCH_CALLS + auto + RUN_CALLS
    out = (await client(proxy, tmp_path, snippet)).ok()
    tags = {"download_tag", "list_repo_tree_tag"}
    for name, outcome in out.items():
        revision, sha = ("v1.0", v1) if name in tags else ("main", head)
        kind = "OSError" if name == "auto_config" else "GatedRepoError"
        assert_pin_refusal(outcome, revision, sha, kind)
    assert "(repo info without a revision is branch 'main')" in out["model_info"][1]
    assert hub.requests.body_fetches("config.json") == 0  # no byte of any commit was fetched
    assert hub.requests.count(path_contains="/tree/") == 0
    assert hub.requests.count(path_contains="/paths-info/") == 0

    # The same doors over plain HTTP: each refusal is a hub-style 403 that shows no content.
    async with ClientSession() as http:
        api = f"{proxy.endpoint}/api/models/{MODEL}"
        for method, url in [
            ("GET", api),
            ("GET", f"{api}/revision/main"),
            ("GET", f"{api}/tree"),
            ("GET", f"{api}/tree/main?recursive=true"),
            ("POST", f"{api}/paths-info/v1.0"),
            ("HEAD", f"{proxy.endpoint}/{MODEL}/resolve/main/config.json"),
            ("GET", f"{proxy.endpoint}/{MODEL}/resolve/refs%2Fpr%2F1/config.json"),
        ]:
            async with http.request(method, url, data={"paths": "config.json"}) as r:
                assert r.status == 403, url
                assert r.headers["X-Error-Code"] == "GatedRepo"
                assert "is a branch or tag, not a commit" in r.headers["X-Error-Message"]
                assert "X-Repo-Commit" not in r.headers
                if method != "HEAD":
                    assert set(await r.json()) == {"error"}
        async with http.get(f"{api}/refs") as r:
            assert r.status == 404  # refs listing: not served at all
            assert head not in await r.text()
        # Pinned to a commit, the same endpoints answer.
        async with http.get(api + f"/revision/{head}") as r:
            assert r.status == 200
            assert (await r.json())["sha"] == head
        async with http.get(f"{api}/tree/{v1}") as r:
            assert r.status == 200


async def test_client0_is_refused_bare_info_and_branch_listings(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """huggingface_hub 0.x (``True`` query spellings, requests) sees the same refusals."""
    head, v1 = hub.commit_sha(MODEL), hub.commit_sha(MODEL, "v1.0")
    run = await client(proxy, tmp_path, BRANCH_CALLS + RUN_CALLS, hf0=True)
    out = run.ok()
    for name, outcome in out.items():
        revision, sha = ("v1.0", v1) if name.endswith("_tag") else ("main", head)
        assert_pin_refusal(outcome, revision, sha)
    assert hub.requests.body_fetches("config.json") == 0


async def test_resolve_approved_shows_the_approved_commit_only(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """sha, siblings, tree, paths-info, HEAD and AutoConfig: the approved commit, never main's
    head; a repo without an approval is refused, bare info included."""
    v1, head = hub.commit_sha(MODEL, "v1.0"), hub.commit_sha(MODEL)
    await proxy.set_hf_data({"unpinned": "resolve-approved", "approved": {MODEL: v1}})
    snippet = (
        AUTO_CONFIG
        + f"""
api = hf.HfApi(endpoint=endpoint)
info = api.model_info({MODEL!r})
blobs = api.model_info({MODEL!r}, files_metadata=True)
result = {{
    "info": [info.sha, sorted(s.rfilename for s in info.siblings)],
    "blobs": [blobs.sha, {{s.rfilename: s.blob_id for s in blobs.siblings}}],
    "main": api.model_info({MODEL!r}, revision="main").sha,
    "files": api.list_repo_files({MODEL!r}),
    "paths": {{e.path: e.blob_id
               for e in api.get_paths_info({MODEL!r}, ["config.json", "README.md"])}},
    "auto": AutoConfig.from_pretrained({MODEL!r}, cache_dir=cache_dir).to_dict()["hidden_size"],
    "snapshot": os.path.basename(hf.snapshot_download({MODEL!r}, cache_dir=cache_dir)),
}}
try:
    api.dataset_info({DATASET!r})
except Exception as e:
    result["dataset"] = [type(e).__name__, str(e)]
"""
    )
    out = (await client(proxy, tmp_path, snippet)).ok()
    approved = hub.repo(MODEL).commits[v1]
    config = hub.expect(MODEL, "config.json", "v1.0")
    assert out["info"] == [v1, sorted(approved.files)]
    assert "README.md" not in approved.files  # only main's head has it
    assert out["blobs"][0] == v1
    assert out["blobs"][1] == {p: f.oid for p, f in approved.files.items()}
    assert out["main"] == out["snapshot"] == v1
    assert out["files"] == list(approved.files)
    assert out["paths"] == {"config.json": config.blob_sha1}
    assert out["auto"] == json.loads(config.content())["hidden_size"]
    kind, message = out["dataset"]
    assert kind == "GatedRepoError"
    dsha = hub.commit_sha(DATASET, repo_type="dataset")
    assert f"no commit of datasets/{DATASET} is approved for revision 'main'" in message
    assert f"('main' points to {dsha} now)" in message
    assert "[unpinned-unapproved]" in message
    async with ClientSession() as http:
        api = f"{proxy.endpoint}/api/models/{MODEL}"
        for url in (api, f"{api}?blobs=true", f"{api}/tree/main", f"{api}/revision/v1.0"):
            async with http.get(url) as r:
                assert r.status == 200, url
                assert head not in await r.text(), url
        async with http.head(f"{proxy.endpoint}/{MODEL}/resolve/main/config.json") as r:
            assert r.headers["X-Repo-Commit"] == v1
    run0 = await client(
        proxy,
        tmp_path / "hf0",
        f"result = hf.HfApi(endpoint=endpoint).model_info({MODEL!r}).sha",
        hf0=True,
    )
    assert run0.ok() == v1


@asynccontextmanager
async def lying_relay(hub: FakeHub, sha: str) -> AsyncIterator[str]:
    """A real HTTP server in front of *hub* that answers every ``/revision/{commit}`` with
    ``sha`` instead of the commit asked for (what a hostile upstream could do)."""

    async def relay(request: web.Request) -> web.StreamResponse:
        url = hub.url + request.rel_url.raw_path_qs
        async with ClientSession() as http:
            async with http.request(
                request.method, URL(url, encoded=True), headers=request.headers
            ) as r:
                body = await r.read()
                if "/revision/" in request.rel_url.raw_path and r.status == 200:
                    body = json.dumps({**json.loads(body), "sha": sha}).encode()
                return web.Response(status=r.status, body=body, content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_repo_info_must_be_for_the_commit_asked(hub: FakeHub, tmp_path: Path) -> None:
    """Info at a commit (pinned, or the approved commit) whose sha is another is refused."""
    v1, head = hub.commit_sha(MODEL, "v1.0"), hub.commit_sha(MODEL)
    approved = {"unpinned": "resolve-approved", "approved": {MODEL: v1}}
    async with (
        lying_relay(hub, head) as upstream,
        hf_proxy(tmp_path, upstream, hf_data=approved) as proxy,
    ):
        snippet = f"""
        api = hf.HfApi(endpoint=endpoint)
        result = []
        for call in (lambda: api.model_info({MODEL!r}, revision={v1!r}),
                     lambda: api.model_info({MODEL!r})):
            try:
                result.append(["ok", call().sha])
            except Exception as e:
                result.append([type(e).__name__, str(e)])
        """
        out = (await client(proxy, tmp_path, snippet)).ok()
    for kind, message in out:
        assert kind == "HfHubHTTPError", message
        assert f"asked for repo info of {MODEL} at {v1}, the hub answered {head}" in message
