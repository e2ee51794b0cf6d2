"""Golden decisions for policies/hf.rego through the production path: snapshot → compiled
bundle → RegopyEngine, with the facts the Hub side computes (tests/golden/hf.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.decision import Client, FileFacts, Subject
from proxy.policy.rego import RegopyEngine, compile_snapshot
from proxy.policy.snapshot import load_snapshot

REPO = Path(__file__).resolve().parents[3]
CASES: list[dict[str, Any]] = json.loads((REPO / "tests/golden/hf.json").read_text())["cases"]
DEFAULT_DATA: dict[str, Any] = json.loads((REPO / "policies/data/hf.json").read_text())


def subject_of(d: dict[str, Any]) -> Subject:
    files = tuple(
        FileFacts(
            filename=f["filename"],
            kind=f.get("kind", "other"),
            hashes=f.get("hashes", {}),
            size=f.get("size"),
        )
        for f in d["files"]
    )
    return Subject(
        "hf",
        d["action"],
        d["project"],
        "hf",
        client=Client(id="golden"),
        files=files,
        extra=d["facts"],
    )


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(REPO / "policies", dest)
    return dest


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_golden_hf_decision(case: dict[str, Any], policies: Path) -> None:
    (policies / "data" / "hf.json").write_text(json.dumps(DEFAULT_DATA | case["data"]))
    engine = RegopyEngine(compile_snapshot(load_snapshot(policies)))
    try:
        decision = await engine.decide(subject_of(case["subject"]))
    finally:
        await engine.close()
    expect = case["expect"]
    assert decision.error is None
    assert decision.allow is expect["allow"], decision.reasons
    assert sorted({r.rule for r in decision.reasons}) == expect["rules"]
    got_files = {k: sorted({r.rule for r in v}) for k, v in decision.file_denials.items()}
    assert got_files == expect["file_rules"]
    messages = [r.message for r in decision.reasons] + [
        r.message for v in decision.file_denials.values() for r in v
    ]
    if "message_contains" in expect:
        assert any(expect["message_contains"] in m for m in messages), messages


def test_every_deny_has_a_rule_and_a_sentence() -> None:
    """Golden coverage: every rule id of hf.rego appears in at least one case."""
    source = (REPO / "policies/hf.rego").read_text()
    rules = {
        line.split('"rule": "')[1].split('"')[0]
        for line in source.splitlines()
        if '{"rule": "' in line or '"rule": "' in line
    }
    covered = {r for c in CASES for r in c["expect"]["rules"]} | {
        r for c in CASES for v in c["expect"]["file_rules"].values() for r in v
    }
    assert rules <= covered, rules - covered
