"""The admin JSON API against a running proxy: auth, decisions from real pip runs, quarantine,
policy reload and stats."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.admin.setup import RECORDER
from proxy.appkeys import RECORDS
from proxy.settings import UpstreamSettings
from proxy.trust.records import Verdict
from tests.clients import pip_install
from tests.fakes.admin_testing import (
    ADMIN_TOKEN,
    CI_TOKEN,
    Running,
    running_app,
    settings_for_tests,
)
from tests.fakes.pypi_index import FakeIndex

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CI = {"Authorization": f"Bearer {CI_TOKEN}"}
DIGEST = "ab" * 32
REASON = "CVE-2099-0001 remote code execution"
ENDPOINTS = [
    ("GET", "/admin/api/decisions"),
    ("GET", "/admin/api/quarantine"),
    ("POST", f"/admin/api/quarantine/{DIGEST}"),
    ("POST", "/admin/api/policy/reload"),
    ("GET", "/admin/api/stats"),
]


@pytest.fixture
async def admin_proxy(
    tmp_path: Path, policies_dir: Path, fake_index: FakeIndex
) -> AsyncIterator[Running]:
    settings = settings_for_tests(
        tmp_path / "store", policies_dir, UpstreamSettings("fake", fake_index.simple_url)
    )
    async with running_app(settings) as running:
        yield running


async def _call(
    proxy: Running, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, proxy.url + path, headers=headers, json=body) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text), r
            except ValueError:  # e.g. the identity middleware's plain-text 401
                return r.status, text, r


async def _quarantine_one(proxy: Running, digest: str = DIGEST, message: str = "os.system") -> None:
    """Record a verdict with findings, as the scanner does."""
    finding = {"rule": "pickle-global", "message": message, "location": "data.pkl"}
    verdict = Verdict(digest, "scan-1", "pickle", (finding,), time.time())
    await proxy.app[RECORDS].record_verdict(verdict)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_admin_api__unauthenticated_is_401_with_bearer_challenge(
    admin_proxy: Running, method: str, path: str
) -> None:
    status, body, r = await _call(admin_proxy, method, path, {})
    assert status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "admin token" in body["error"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_admin_api__non_admin_client_is_403(
    admin_proxy: Running, method: str, path: str
) -> None:
    status, body, _ = await _call(admin_proxy, method, path, CI)
    assert status == 403
    assert "ci-runner" in body["error"]


async def test_admin_api__unknown_token_is_401(admin_proxy: Running) -> None:
    status, _, r = await _call(
        admin_proxy, "GET", "/admin/api/stats", {"Authorization": "Bearer nope"}
    )
    assert status == 401
    assert "Bearer" in r.headers["WWW-Authenticate"]


async def _decisions(proxy: Running, query: str) -> list[dict[str, Any]]:
    await proxy.app[RECORDER].flushed()
    status, body, _ = await _call(proxy, "GET", f"/admin/api/decisions?{query}", ADMIN)
    assert status == 200, body
    rows: list[dict[str, Any]] = body["decisions"]
    return rows


async def test_admin_api__decisions_from_real_installs_filter_by_client_rule_outcome(
    admin_proxy: Running, policies_dir: Path, tmp_path: Path
) -> None:
    """Anonymous and token-identified pip runs, a deny-listed version: every filter narrows."""
    (policies_dir / "data" / "pypi.json").write_text(
        json.dumps({"deny_versions": {"tiny-lib": {"1.1": REASON}}})
    )
    status, st, _ = await _call(admin_proxy, "POST", "/admin/api/policy/reload", ADMIN)
    assert status == 200, st
    assert st["last_reload_ok"], st
    assert st["reloads"] == 1

    anon = await pip_install(admin_proxy.simple, "tiny-app", target=tmp_path / "a", home=tmp_path)
    assert anon.returncode == 0, anon.output
    ci_url = admin_proxy.simple_as(CI_TOKEN)
    pinned = await pip_install(ci_url, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode != 0
    assert REASON in pinned.said

    everything = await _decisions(admin_proxy, "limit=1000")
    assert {d["client"] for d in everything} == {"anonymous", "ci-runner"}

    ci = await _decisions(admin_proxy, "client=ci-runner")
    assert ci
    assert all(d["client"] == "ci-runner" for d in ci)
    denied = await _decisions(admin_proxy, "client=ci-runner&outcome=deny")
    assert denied
    assert all(d["outcome"] == "deny" for d in denied)
    assert any(d["target"] == "tiny-lib/tiny_lib-1.1-py3-none-any.whl" for d in denied)
    by_rule = await _decisions(admin_proxy, "rule=deny-list")
    assert by_rule
    assert all("deny-list" in d["rules"] for d in by_rule)
    assert any(REASON in " ".join(d["reasons"]) for d in by_rule)
    assert all(d["request_id"] for d in everything)
    assert await _decisions(admin_proxy, "client=nobody") == []
    assert len(await _decisions(admin_proxy, "limit=1")) == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=5000", "client=" + "x" * 300])
async def test_admin_api__bad_decision_query_is_400(admin_proxy: Running, query: str) -> None:
    status, body, _ = await _call(admin_proxy, "GET", f"/admin/api/decisions?{query}", ADMIN)
    assert status == 400
    assert body["error"]


async def test_admin_api__quarantine_list_and_approval(admin_proxy: Running) -> None:
    await _quarantine_one(admin_proxy)
    status, body, _ = await _call(admin_proxy, "GET", "/admin/api/quarantine", ADMIN)
    assert status == 200
    [item] = body["quarantine"]
    assert item["digest"] == DIGEST
    assert item["approval"] is None
    assert item["findings"][0]["rule"] == "pickle-global"

    path = f"/admin/api/quarantine/{DIGEST}"
    verdict = {"verdict": "approve", "reason": "reviewed: test fixture"}
    status, body, _ = await _call(admin_proxy, "POST", path, ADMIN, verdict)
    assert status == 200, body
    assert body["approval"]["by"] == "root-admin"
    assert body["approval"]["verdict"] == "approve"

    _, body, _ = await _call(admin_proxy, "GET", "/admin/api/quarantine", ADMIN)
    approval = body["quarantine"][0]["approval"]
    assert approval["reason"] == "reviewed: test fixture"
    assert approval["by"] == "root-admin"


@pytest.mark.parametrize(
    ("digest", "body", "status", "words"),
    [
        ("xyz", {"verdict": "approve", "reason": "r"}, 400, "sha256"),
        (DIGEST[:-1], {"verdict": "approve", "reason": "r"}, 400, "sha256"),
        (DIGEST, {"verdict": "maybe", "reason": "r"}, 400, "verdict"),
        (DIGEST, {"verdict": "deny", "reason": "   "}, 400, "reason"),
        (DIGEST, {"verdict": "deny"}, 400, "reason"),
        (DIGEST, {"verdict": "deny", "reason": 5}, 400, "reason"),
        (DIGEST, ["approve"], 400, "object"),
        ("cd" * 32, {"verdict": "approve", "reason": "r"}, 404, "not in quarantine"),
    ],
)
async def test_admin_api__bad_approval_is_4xx_json(
    admin_proxy: Running, digest: str, body: Any, status: int, words: str
) -> None:
    await _quarantine_one(admin_proxy)
    got, answer, _ = await _call(
        admin_proxy, "POST", f"/admin/api/quarantine/{digest}", ADMIN, body
    )
    assert got == status
    assert words in answer["error"]


async def test_admin_api__approval_needs_a_json_body(admin_proxy: Running) -> None:
    """Not JSON is 400; a form-encoded or text/plain POST (what a cross-site form can send)
    is 415."""
    await _quarantine_one(admin_proxy)
    url = f"{admin_proxy.url}/admin/api/quarantine/{DIGEST}"
    async with aiohttp.ClientSession() as s:
        headers = {**ADMIN, "Content-Type": "application/json"}
        async with s.post(url, data=b"{not json", headers=headers) as r:
            assert r.status == 400
            assert "JSON" in (await r.json())["error"]
        headers = {**ADMIN, "Content-Type": "text/plain"}
        async with s.post(url, data=b'{"verdict":"approve","reason":"x"}', headers=headers) as r:
            assert r.status == 415
        async with s.post(url, data={"verdict": "approve", "reason": "x"}, headers=ADMIN) as r:
            assert r.status == 415
    assert await admin_proxy.app[RECORDS].approval(DIGEST) is None


async def test_admin_api__policy_reload_reports_failure_and_keeps_revision(
    admin_proxy: Running, policies_dir: Path
) -> None:
    _, before, _ = await _call(admin_proxy, "GET", "/admin/api/stats", ADMIN)
    (policies_dir / "broken.rego").write_text("package airlock.broken\n\nthis is not rego {\n")
    status, st, _ = await _call(admin_proxy, "POST", "/admin/api/policy/reload", ADMIN)
    assert status == 422
    assert st["last_reload_ok"] is False
    assert st["last_error"]
    assert st["revision"] == before["policy"]["revision"]


async def test_admin_api__stats_after_an_install(admin_proxy: Running, tmp_path: Path) -> None:
    run = await pip_install(admin_proxy.simple, "tiny-app", target=tmp_path / "t", home=tmp_path)
    assert run.returncode == 0, run.output
    await admin_proxy.app[RECORDER].flushed()
    status, st, _ = await _call(admin_proxy, "GET", "/admin/api/stats", ADMIN)
    assert status == 200
    assert st["store"]["blobs"] >= 2
    assert st["store"]["bytes"] > 1000
    assert st["caches"]["fills_in_flight"] == 0
    assert st["caches"]["upstream_fetches"] >= 2
    assert st["policy"]["last_reload_ok"] is True
    assert st["policy"]["revision"]
    assert st["metadata"]["decisions"] >= 3
    assert st["metadata"]["files"] >= 2
