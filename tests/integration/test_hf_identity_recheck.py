"""Namespace reuse inside ``hf.ttl``: a commit the mirror has never served for a repo name makes
it check that name's identity upstream again before it serves anything of that commit.

Repo info (and the identity in it) is otherwise reused for ``hf.ttl`` (600 s by default); a repo
deleted and re-created under the same name within that time must not get its new commits served
under the old identity.  Real huggingface_hub client, stand-in hub, default ttl.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from proxy.logging import DECISION_SINKS
from tests.fakes.hf_client import ClientRun, hf_env, run_hf
from tests.fakes.hf_fixtures import MODEL
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy
from tests.fakes.hf_repos import make_commit

BARE_INFO = f"/api/models/{MODEL}"


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url) as running:  # default hf.ttl (600 s)
        assert running.settings.hf.ttl >= 600
        yield running


def decisions(proxy: HfProxy) -> list[Mapping[str, Any]]:
    """Every decision event the proxy logs from now on."""
    events: list[Mapping[str, Any]] = []
    proxy.app[DECISION_SINKS].append(events.append)
    return events


async def client(proxy: HfProxy, home: Path, snippet: str) -> ClientRun:
    return await run_hf(snippet, hf_env(proxy.endpoint, home))


def read_config(revision: str) -> str:
    return f"result = open(download({MODEL!r}, 'config.json', revision={revision!r})).read()"


async def test_a_recreated_repo_is_caught_on_its_first_new_commit_within_the_ttl(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    old, old_id = hub.commit_sha(MODEL), hub.repo(MODEL).object_id
    (await client(proxy, tmp_path / "a", read_config(old))).ok()  # identity recorded and cached
    fresh = hub.recreate_repo(MODEL)
    new = fresh.head.oid
    events = decisions(proxy)
    run = await client(
        proxy,
        tmp_path / "b",
        f"""
        api = hf.HfApi(endpoint=endpoint)
        result = {{}}
        for name, call in {{
            "download": lambda: download({MODEL!r}, "config.json", revision={new!r}),
            "info": lambda: api.model_info({MODEL!r}, revision={new!r}).sha,
            "tree": lambda: api.list_repo_files({MODEL!r}, revision={new!r}),
            "old": lambda: download({MODEL!r}, "config.json", revision={old!r}),
        }}.items():
            try:
                result[name] = ["ok", call()]
            except Exception as e:
                result[name] = [type(e).__name__, str(e)]
        """,
    )
    out = run.ok()
    for name, (kind, message) in out.items():
        assert kind == "GatedRepoError", (name, message)
        assert f"possible namespace reuse: {MODEL} is a different repository" in message
        assert f"its id changed from {old_id} to {fresh.object_id}" in message
        assert "[namespace-reuse]" in message
    # Of the new commit only the file's metadata (a HEAD, facts for the decision) was asked
    # upstream: no byte, no info, no listing.
    assert {r.method for r in hub.requests.filter(path_contains=new)} == {"HEAD"}
    assert hub.requests.body_fetches("config.json") == 1  # the old commit, before
    first = events[0]
    assert (first["endpoint"], first["revision"], first["outcome"]) == ("resolve", new, "deny")
    assert first["rules"] == ["namespace-reuse"]
    assert first["findings"] == ["id-changed", "recreated"]
    assert [e["rules"] for e in events] == [["namespace-reuse"]] * len(events)


async def test_a_new_commit_of_the_same_repo_is_served_after_one_identity_check(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """The re-check costs one repo-info request per new commit, not one per request."""
    old = hub.commit_sha(MODEL)
    (await client(proxy, tmp_path / "a", read_config(old))).ok()  # HEAD + GET
    checks = hub.requests.count(path=BARE_INFO)
    assert checks == 1  # the first request's own fetch vouched for the commit
    repo = hub.repo(MODEL)
    pushed = make_commit(
        repo.head,
        {"config.json": json.dumps({"model_type": "tiny", "hidden_size": 32}).encode()},
        title="Grow",
        date=repo.head.date + timedelta(days=1),
    )
    repo.commits[pushed.oid] = pushed
    repo.branches["main"] = pushed.oid
    for home in ("b", "c"):  # by branch: refused, naming the new commit to pin
        run = await client(proxy, tmp_path / home, read_config("main"))
        assert run.error is not None
        assert f'revision="{pushed.oid}"' in run.error.message
    for home in ("d", "e"):
        run = await client(proxy, tmp_path / home, read_config(pushed.oid))
        assert json.loads(run.ok())["hidden_size"] == 32
    assert hub.requests.count(path=BARE_INFO) == checks + 1
    (await client(proxy, tmp_path / "f", read_config(old))).ok()
    assert hub.requests.count(path=BARE_INFO) == checks + 1  # a known commit: the ttl holds


async def test_a_failed_identity_check_refuses_the_new_commit(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """Fail closed: stored repo info cannot vouch for a commit the mirror has not seen."""
    old, v1 = hub.commit_sha(MODEL), hub.commit_sha(MODEL, "v1.0")
    (await client(proxy, tmp_path / "a", read_config(old))).ok()
    await hub.close()  # the hub is gone
    async with ClientSession() as http:
        async with http.get(f"{proxy.endpoint}/{MODEL}/resolve/{v1}/config.json") as r:
            assert r.status == 502
            message = r.headers["X-Error-Message"]
            assert f"commit {v1} of {MODEL} is new to this mirror" in message
            assert "checking upstream" in message
        async with http.get(f"{proxy.endpoint}/{MODEL}/resolve/{old}/config.json") as r:
            assert r.status == 200  # the known commit is still served from the store
