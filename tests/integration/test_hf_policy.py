"""Hub policy through the proxy with the real clients: namespace reuse, allow-list, approved
commits for branches, tokens, gated repos, and the reason shown by transformers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from proxy.hf import routes
from proxy.settings import AccessSettings, ClientSettings
from tests.fakes.hf_client import ClientRun, hf_env, run_hf
from tests.fakes.hf_fixtures import (
    DATASET,
    GATED_MODEL,
    MODEL,
    OTHER_TOKEN,
    PRIVATE_MODEL,
    READ_TOKEN,
    RENAMED_MODEL,
    SPACE,
)
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    # ttl=0: revalidate on every request; the CDN is another loopback origin, listed by hand
    async with hf_proxy(tmp_path, hub.url, ttl=0.0, egress_allow=(hub.cdn_url,)) as running:
        yield running


async def client(
    proxy: HfProxy, home: Path, snippet: str, *, token: str | None = None
) -> ClientRun:
    return await run_hf(snippet, hf_env(proxy.endpoint, home, token=token))


def read_config(repo: str, revision: str) -> str:
    return f"result = open(download({repo!r}, 'config.json', revision={revision!r})).read()"


async def test_namespace_reuse_is_blocked_with_its_reason(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """A deleted and re-created repo is refused (new and old commits) until an admin accepts it."""
    old, old_id = hub.commit_sha(MODEL), hub.repo(MODEL).object_id
    (await client(proxy, tmp_path / "a", read_config(MODEL, old))).ok()  # identity recorded
    fresh = hub.recreate_repo(MODEL)
    for sha in (fresh.head.oid, old):
        run = await client(proxy, tmp_path / "b", read_config(MODEL, sha))
        assert run.error is not None
        assert run.error.is_a("GatedRepoError")
        assert "possible namespace reuse" in run.error.message
        assert f"its id changed from {old_id} to {fresh.object_id}" in run.error.message
        assert "[namespace-reuse]" in run.error.message
    await proxy.set_hf_data({"accept_identity": {MODEL: fresh.object_id}})
    accepted = await client(proxy, tmp_path / "c", read_config(MODEL, fresh.head.oid))
    assert accepted.ok() == hub.expect(MODEL, "config.json").content().decode()


async def test_renamed_repo_whose_old_name_is_taken_over(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """The old name of a transferred repo stops redirecting: refused as namespace reuse."""
    sha = hub.commit_sha(MODEL)
    first = await client(proxy, tmp_path, read_config(RENAMED_MODEL, sha))
    assert first.ok() == hub.expect(MODEL, "config.json").content().decode()
    taken = hub.recreate_repo(RENAMED_MODEL)
    # stale-while-revalidate: the stored info answers once more while the hub is asked in
    # the background; the takeover is judged from the next request on
    await client(
        proxy, tmp_path, f"result = hf.HfApi(endpoint=endpoint).model_info({RENAMED_MODEL!r}).sha"
    )
    await proxy.app[routes.SERVICE].source.settled()
    run = await client(
        proxy,
        tmp_path,
        f"result = hf.HfApi(endpoint=endpoint).model_info({RENAMED_MODEL!r}).sha",
    )
    assert run.error is not None
    assert f"used to redirect to {MODEL} and no longer does" in run.error.message
    assert taken.head.oid not in str(run.result)


async def test_allow_list_by_org_repo_type_and_revision(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Only listed repos, types and revisions are served; the reason names the allow list."""
    v1, main = hub.commit_sha(MODEL, "v1.0"), hub.commit_sha(MODEL)
    await proxy.set_hf_data(
        {
            "allow_all": False,
            "allow": [
                {"org": "acme", "type": "dataset"},
                {"repo": MODEL, "revisions": [v1]},
            ],
        }
    )
    dsha = hub.commit_sha(DATASET, repo_type="dataset")
    ssha = hub.commit_sha(SPACE, repo_type="space")
    run = await client(
        proxy,
        tmp_path,
        f"""
        out = []
        for repo, kind, rev, name in [({MODEL!r}, "model", {v1!r}, "config.json"),
                                      ({MODEL!r}, "model", {main!r}, "config.json"),
                                      ({DATASET!r}, "dataset", {dsha!r}, "README.md"),
                                      ({SPACE!r}, "space", {ssha!r}, "app.py")]:
            try:
                download(repo, name, repo_type=kind, revision=rev)
                out.append("ok")
            except Exception as e:
                out.append(str(e))
        result = out
        """,
    )
    ok_v1, main_denied, ok_data, space_denied = run.ok()
    assert (ok_v1, ok_data) == ("ok", "ok")
    assert f"{MODEL} at revision '{main}' is not on the allow list" in main_denied
    assert f"spaces/{SPACE} at revision '{ssha}' is not on the allow list" in space_denied


async def test_resolve_approved_serves_branches_at_the_approved_commit(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """In resolve-approved mode main means the admin's commit everywhere (HEAD, info, tree)."""
    v1 = hub.commit_sha(MODEL, "v1.0")
    await proxy.set_hf_data({"unpinned": "resolve-approved", "approved": {MODEL: v1}})
    run = await client(
        proxy,
        tmp_path,
        f"""
        api = hf.HfApi(endpoint=endpoint)
        root = hf.snapshot_download({MODEL!r}, cache_dir=cache_dir)
        result = [open(download({MODEL!r}, "config.json")).read(), api.model_info({MODEL!r}).sha,
                  sorted(os.listdir(root)), os.path.basename(root)]
        try:
            download({DATASET!r}, "README.md", repo_type="dataset")
        except Exception as e:
            result.append(str(e))
        """,
    )
    config, info_sha, listing, snapshot_dir, dataset_denied = run.ok()
    assert config == hub.expect(MODEL, "config.json", "v1.0").content().decode()
    assert info_sha == snapshot_dir == v1
    assert "README.md" not in listing  # README.md only exists from the 2nd commit on
    dsha = hub.commit_sha(DATASET, repo_type="dataset")
    assert f"no commit of datasets/{DATASET} is approved for revision 'main'" in dataset_denied
    assert f"points to {dsha} now" in dataset_denied


async def test_tokens_go_to_the_hub_only_and_gated_access_is_rechecked(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """A client token is forwarded to the hub; files of a gated repo are not served to others."""
    hub.mode.lfs_redirect = True
    sha = hub.commit_sha(GATED_MODEL)
    snippet = f"result = read_hex(download({GATED_MODEL!r}, 'model.safetensors', revision={sha!r}))"
    granted = await client(proxy, tmp_path / "a", snippet, token=READ_TOKEN)
    assert (
        bytes.fromhex(str(granted.ok())) == hub.expect(GATED_MODEL, "model.safetensors").content()
    )
    for token in (OTHER_TOKEN, None):
        refused = await client(proxy, tmp_path / "b", snippet, token=token)
        assert refused.error is not None
        assert refused.error.is_a("GatedRepoError")
        assert "Blocked by policy" not in refused.error.message  # the hub's own refusal
    assert all("authorization" not in r.headers for r in hub.requests.filter(server="cdn"))


async def test_server_token_replaces_the_clients(hub: FakeHub, tmp_path: Path) -> None:
    """With hf.token set, the hub sees that token whatever the client sends."""
    async with hf_proxy(tmp_path, hub.url, token=READ_TOKEN) as proxy:
        sha = hub.commit_sha(GATED_MODEL)
        run = await client(proxy, tmp_path, read_config(GATED_MODEL, sha), token=OTHER_TOKEN)
        assert run.ok() == hub.expect(GATED_MODEL, "config.json").content().decode()
    seen = {r.headers.get("authorization") for r in hub.requests.filter(server="hub")}
    assert seen == {f"Bearer {READ_TOKEN}"}


async def test_client_token_not_forwarded_when_disabled(hub: FakeHub, tmp_path: Path) -> None:
    async with hf_proxy(tmp_path, hub.url, forward_client_token=False) as proxy:
        run = await client(
            proxy, tmp_path, read_config(MODEL, hub.commit_sha(MODEL)), token=READ_TOKEN
        )
        run.ok()
    assert all("authorization" not in r.headers for r in hub.requests)


async def test_transformers_from_pretrained_and_its_block_message(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """transformers loads a config by sha; by branch its exception carries our reason."""
    sha = hub.commit_sha(MODEL)
    run = await client(
        proxy,
        tmp_path,
        f"""
        from transformers import PretrainedConfig
        cfg = PretrainedConfig.from_pretrained({MODEL!r}, revision={sha!r}, cache_dir=cache_dir)
        result = [cfg.to_dict()["hidden_size"]]
        try:
            PretrainedConfig.from_pretrained({MODEL!r}, cache_dir=cache_dir)
        except Exception as e:
            result.append(str(e))
        """,
    )
    hidden, blocked = run.ok()
    assert hidden == json.loads(hub.expect(MODEL, "config.json").content())["hidden_size"]
    assert "Blocked by policy: revision 'main'" in blocked
    assert sha in blocked
    async with ClientSession() as http:
        async with http.get(f"{proxy.endpoint}/api/models/{MODEL}/revision/main") as r:
            assert r.status == 403
            assert r.headers["X-Error-Code"] == "GatedRepo"


async def test_private_repo_data_stays_with_the_token_that_fetched_it(
    hub: FakeHub, tmp_path: Path
) -> None:
    """Info and files of a private repo fetched with one token are not served to others."""
    async with hf_proxy(  # default ttl: cached info would be reused; bare info needs "allow"
        tmp_path, hub.url, hf_data={"unpinned": "allow"}
    ) as proxy:
        sha = hub.commit_sha(PRIVATE_MODEL)
        snippet = f"""
            api = hf.HfApi(endpoint=endpoint)
            result = [api.model_info({PRIVATE_MODEL!r}).sha,
                      open(download({PRIVATE_MODEL!r}, "config.json", revision={sha!r})).read()]
        """
        granted = (await client(proxy, tmp_path / "a", snippet, token=READ_TOKEN)).ok()
        assert granted[0] == sha
        for token in (None, OTHER_TOKEN):
            refused = await client(proxy, tmp_path / "b", snippet, token=token)
            assert refused.error is not None
            assert refused.error.is_a("RepositoryNotFoundError")


async def test_an_airlock_token_identifies_the_client_and_is_never_forwarded(
    hub: FakeHub, tmp_path: Path
) -> None:
    """HF_TOKEN set to an airlock client token: consumed by the proxy, not sent to the hub."""
    airlock_token = "airlock-ci-token-0123456789"
    access = AccessSettings(
        anonymous="deny", clients=(ClientSettings(id="ci", token=airlock_token, groups=("ci",)),)
    )
    async with hf_proxy(tmp_path, hub.url, access=access) as proxy:
        run = await client(
            proxy, tmp_path, read_config(MODEL, hub.commit_sha(MODEL)), token=airlock_token
        )
        assert run.ok() == hub.expect(MODEL, "config.json").content().decode()
        anonymous = await client(proxy, tmp_path / "b", read_config(MODEL, hub.commit_sha(MODEL)))
        assert anonymous.error is not None
    assert all("authorization" not in r.headers for r in hub.requests)
