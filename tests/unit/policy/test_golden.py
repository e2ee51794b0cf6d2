"""Golden decisions through the production path: snapshot → compiled bundle → RegopyEngine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.decision import FileFacts, Subject
from proxy.policy.rego import RegopyEngine, compile_snapshot
from proxy.policy.snapshot import load_snapshot

REPO = Path(__file__).resolve().parents[3]
CASES: list[dict[str, Any]] = json.loads((REPO / "tests/golden/pypi.json").read_text())["cases"]


def _subject(d: dict[str, Any]) -> Subject:
    files = tuple(
        FileFacts(
            filename=f["filename"],
            version=f.get("version"),
            kind=f.get("kind", "other"),
            hashes=f.get("hashes", {}),
        )
        for f in d["files"]
    )
    return Subject("pypi", d["action"], d["project"], "default", files=files)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_golden_decision(case: dict[str, Any], tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "data" / "pypi.json").write_text(json.dumps(case["data"]))
    engine = RegopyEngine(compile_snapshot(load_snapshot(policies)))
    try:
        decision = await engine.decide(_subject(case["subject"]))
    finally:
        await engine.close()
    expect = case["expect"]
    assert decision.error is None
    assert decision.allow is expect["allow"]
    assert sorted({r.rule for r in decision.reasons}) == expect["rules"]
    got_files = {k: sorted({r.rule for r in v}) for k, v in decision.file_denials.items()}
    assert got_files == expect["file_rules"]
    if "message_contains" in expect:
        messages = [r.message for r in decision.reasons] + [
            r.message for v in decision.file_denials.values() for r in v
        ]
        assert any(expect["message_contains"] in m for m in messages)
