"""Golden decisions through the production path: snapshot → compiled bundle → RegopyEngine."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from proxy.decision import Client, FileFacts, Subject
from proxy.policy.rego import RegopyEngine, compile_snapshot
from proxy.policy.snapshot import load_snapshot

REPO = Path(__file__).resolve().parents[3]
CASES: list[dict[str, Any]] = json.loads((REPO / "tests/golden/pypi.json").read_text())["cases"]
OLD_NS = 1_577_836_800 * 10**9  # 2020-01-01
FILE_KEYS = {"filename", "version", "kind", "hashes", "age_hours", "no_upload_time", "yanked"}
FACT_DEFAULTS: dict[str, Any] = {
    "typosquat": [],
    "identity": [],
    "internal_errors": [],
    "previously_internal": False,
    "stale": False,
}


def _file(f: dict[str, Any]) -> FileFacts:
    uploaded: int | None = OLD_NS
    if "age_hours" in f:
        uploaded = time.time_ns() - int(f["age_hours"] * 3600 * 10**9)
    if f.get("no_upload_time"):
        uploaded = None
    return FileFacts(
        filename=f["filename"],
        version=f.get("version"),
        kind=f.get("kind", "other"),
        hashes=f.get("hashes", {"sha256": "0" * 64}),
        upload_time_ns=uploaded,
        yanked=f.get("yanked", False),
        extra={k: v for k, v in f.items() if k not in FILE_KEYS},
    )


def _facts(facts: dict[str, Any]) -> dict[str, Any]:
    """``history.age_days`` stands for a first upload that many days before now."""
    history = facts.get("history")
    if not isinstance(history, dict) or "age_days" not in history:
        return facts
    first = time.time_ns() - int(history["age_days"] * 86400 * 10**9)
    rest = {k: v for k, v in history.items() if k != "age_days"}
    return facts | {"history": rest | {"first_upload_ns": first}}


def subject_of(d: dict[str, Any]) -> Subject:
    upstream = d.get("upstream", "public")
    files = tuple(_file(f) for f in d["files"])
    osv = {"osv": any("osv" in f.extra for f in files)}  # as PolicyIndex sets it
    return Subject(
        "pypi",
        d.get("action", "page"),
        d["project"],
        upstream,
        client=Client(id="golden", groups=tuple(d.get("groups", ()))),
        files=files,
        extra=FACT_DEFAULTS | {"upstream_kind": upstream} | osv | _facts(d.get("facts", {})),
    )


def check(decision: Any, expect: dict[str, Any]) -> None:
    assert decision.error is None
    assert decision.allow is expect["allow"]
    assert sorted({r.rule for r in decision.reasons}) == expect.get("rules", [])
    got_files = {k: sorted({r.rule for r in v}) for k, v in decision.file_denials.items()}
    assert got_files == expect.get("file_rules", {})
    assert sorted({r.rule for r in decision.warnings}) == expect.get("warn_rules", [])
    if "message_contains" in expect:
        messages = [r.message for r in decision.reasons] + [
            r.message for v in decision.file_denials.values() for r in v
        ]
        assert any(expect["message_contains"] in m for m in messages), messages


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_golden_decision(case: dict[str, Any], tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "data" / "pypi.json").write_text(json.dumps(case.get("data", {})))
    engine = RegopyEngine(
        compile_snapshot(load_snapshot(policies)),
        upstream_kinds={"public": "public", "internal": "internal"},
    )
    try:
        decision = await engine.decide(subject_of(case["subject"]))
    finally:
        await engine.close()
    check(decision, case["expect"])
