"""Approvals: the in-toto statement's shape, one signature per (digest, policy revision, name),
and the served recorder (digest from a fill, nothing when the fill failed, scan verdicts)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mirror_store.digest import Digest
from mirror_store.fill import Fill, FillFailed
from mirror_store.metadata import SqliteMetadata
from proxy.decision import Decision, Reason
from proxy.scan import SCANNER_VERSION
from proxy.trust.attest import PREDICATE_TYPE, STATEMENT_TYPE, AttestationStore, Attestor, statement
from proxy.trust.attest_served import ServedRecorder, not_enforced
from proxy.trust.dsse import verify
from proxy.trust.keys import load_or_create
from proxy.trust.records import Served, TrustRecords, Verdict

D1 = "a" * 64
D2 = "b" * 64


def _served(**kw: Any) -> Served:
    base: dict[str, Any] = dict(
        client="ci",
        ecosystem="pypi",
        project="tiny-lib",
        version="1.0",
        filename="tiny_lib-1.0-py3-none-any.whl",
        digest=D1,
        upstream="fake",
        policy_revision="rev1",
        at=1_700_000_000.25,
    )
    return Served(**(base | kw))


def test_statement_is_an_in_toto_v1_approval() -> None:
    st = statement(_served(rules=("cooldown",)), "allow", "kid")
    assert st["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert st["subject"] == [{"name": "tiny_lib-1.0-py3-none-any.whl", "digest": {"sha256": D1}}]
    assert st["predicateType"] == PREDICATE_TYPE
    p = st["predicate"]
    assert p["decision"] == "allow"
    assert p["ruleIds"] == ["cooldown"]
    assert p["policyRevision"] == "rev1"
    assert p["ecosystem"] == "pypi"
    assert (p["project"], p["version"], p["upstream"]) == ("tiny-lib", "1.0", "fake")
    assert p["time"] == "2023-11-14T22:13:20.250Z"
    assert p["approver"]["keyid"] == "kid"
    hf = statement(
        _served(
            ecosystem="hf",
            version="c" * 40,
            filename="cfg/config.json",
            extra={"repo_type": "dataset"},
            scan_verdict="clean",
        ),
        "allow",
    )["predicate"]
    assert (hf["commit"], hf["repoType"], hf["scanVerdict"]) == ("c" * 40, "dataset", "clean")
    assert "version" not in hf


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[SqliteMetadata]:
    m = SqliteMetadata(tmp_path / "metadata.sqlite3")
    yield m
    await m.close()


async def test_signed_once_per_digest_revision_and_name(
    meta: SqliteMetadata, tmp_path: Path
) -> None:
    key = load_or_create(tmp_path)
    store = await asyncio.to_thread(AttestationStore, meta)
    attestor = Attestor(key, store)
    assert await attestor.attest(_served(), "allow")
    assert not await attestor.attest(_served(client="other"), "allow")  # same content, same rev
    assert await attestor.attest(_served(policy_revision="rev2", at=1_700_000_100.0), "allow")
    assert await attestor.attest(_served(filename="copy.whl", at=1_700_000_050.0), "allow")
    assert attestor.signed == 3
    # A new process (empty memory) finds the stored one instead of signing again.
    fresh = Attestor(key, store)
    assert not await fresh.attest(_served(), "allow")
    assert fresh.signed == 0

    latest = await store.latest(D1)
    assert latest is not None
    st = json.loads(verify(latest, key.public))
    assert st["predicate"]["policyRevision"] == "rev2"  # the newest
    named = await store.latest(D1, "copy.whl")
    assert named is not None
    assert json.loads(base64.b64decode(named["payload"]))["subject"][0]["name"] == "copy.whl"
    assert await store.latest(D2) is None
    assert await store.latest(D1, "nope.whl") is None


def test_not_enforced_rules() -> None:
    monitored = Decision(allow=True, monitored=(Reason("cooldown", "too new"),))
    assert not_enforced(monitored, "f.whl") == ("cooldown",)
    monitor_mode = Decision(
        allow=False,
        enforced=False,
        reasons=(Reason("deny-list", "bad"),),
        file_denials={"f.whl": (Reason("yanked", "yanked"),)},
    )
    assert not_enforced(monitor_mode, "f.whl") == ("deny-list", "yanked")
    assert not_enforced(Decision(allow=True), "f.whl") == ()


class _Attestor:
    def __init__(self) -> None:
        self.seen: list[tuple[Served, str]] = []

    async def attest(self, s: Served, decision: str) -> bool:
        self.seen.append((s, decision))
        return True


async def test_recorder_resolves_fills_and_scan_verdicts(meta: SqliteMetadata) -> None:
    records = await asyncio.to_thread(TrustRecords, meta)
    attestor = _Attestor()
    recorder = ServedRecorder(records, attestor)  # type: ignore[arg-type]
    ok, failed = Fill("ok", None), Fill("bad", None)
    recorder.record(_served(digest="", extra={"decision": "allow"}), ok)
    recorder.record(_served(digest="", filename="bad.whl"), failed)
    await records.record_verdict(
        Verdict(D2, SCANNER_VERSION, "pickle", ({"rule": "r", "message": "m"},), time.time())
    )
    await records.set_approval(D2, "approve", "vetted", "admin")
    recorder.record(_served(ecosystem="hf", filename="model.bin", digest=""), Digest(D2), scan=True)
    ok.digest = Digest(D1)
    ok.finished.set()
    failed.error = FillFailed("quarantined")
    failed.finished.set()
    await recorder.drain()
    rows = await records.served()
    assert {(r.filename, r.digest, r.scan_verdict) for r in rows} == {
        ("tiny_lib-1.0-py3-none-any.whl", D1, None),
        ("model.bin", D2, "approved"),
    }
    assert all(r.at > 1_700_000_000.25 for r in rows)  # stamped when served
    assert sorted(s.filename for s, _ in attestor.seen) == [
        "model.bin",
        "tiny_lib-1.0-py3-none-any.whl",
    ]
    await recorder.close()
