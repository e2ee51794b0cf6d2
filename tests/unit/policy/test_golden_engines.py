"""Every golden decision (tests/golden/*.json) on every engine the product offers.

The same shipped policy folder, the same case data and the same Subject go through the embedded
engine (regopy) and through an external OPA (OpaEngine → the stand-in server running OPA's own
engine), and both must produce the golden decision.  This is the conformance gate between
engines: a construct one engine gets wrong fails here for that engine only.

Each ecosystem's golden module (``test_golden`` for pypi, ``test_golden_<eco>`` otherwise)
supplies ``subject_of`` and, optionally, ``check`` and ``DEFAULT_DATA`` (case data is merged
over it), so a case means the same thing here as in its own test.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.decision import Decision, Subject
from proxy.policy.golib import GolibEngine
from proxy.policy.opa import OpaEngine
from proxy.policy.rego import RegopyEngine, compile_snapshot
from proxy.policy.snapshot import load_snapshot
from tests.fakes.opa_server import OpaProcess, opa_process
from tests.require import require_golib

REPO = Path(__file__).resolve().parents[3]
KINDS = {"public": "public", "internal": "internal"}


def _cases() -> Iterator[Any]:
    for path in sorted((REPO / "tests/golden").glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            yield pytest.param(path.stem, case, id=f"{path.stem}: {case['name']}")


CASES = list(_cases())


def _check(decision: Decision, expect: dict[str, Any]) -> None:
    assert decision.error is None
    assert decision.allow is expect["allow"], decision.reasons
    assert sorted({r.rule for r in decision.reasons}) == expect.get("rules", [])
    got_files = {k: sorted({r.rule for r in v}) for k, v in decision.file_denials.items()}
    assert got_files == expect.get("file_rules", {})
    if "message_contains" in expect:
        messages = [r.message for r in decision.reasons] + [
            r.message for v in decision.file_denials.values() for r in v
        ]
        assert any(expect["message_contains"] in m for m in messages), messages


def _golden(ecosystem: str) -> tuple[Callable[[dict[str, Any]], Subject], dict[str, Any], Any]:
    suffix = "" if ecosystem == "pypi" else f"_{ecosystem}"
    module = importlib.import_module(f"tests.unit.policy.test_golden{suffix}")
    return module.subject_of, getattr(module, "DEFAULT_DATA", {}), getattr(module, "check", _check)


@pytest.fixture(scope="module")
def opa_server() -> Iterator[OpaProcess]:
    require_golib()
    with opa_process() as server:
        yield server


def _policies(
    tmp_path: Path, ecosystem: str, case: dict[str, Any], default: dict[str, Any]
) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    (root / "data" / f"{ecosystem}.json").write_text(json.dumps(default | case.get("data", {})))
    return root


@pytest.mark.parametrize(("ecosystem", "case"), CASES)
async def test_golden_on_regopy(ecosystem: str, case: dict[str, Any], tmp_path: Path) -> None:
    subject_of, default, check = _golden(ecosystem)
    snapshot = load_snapshot(_policies(tmp_path, ecosystem, case, default))
    engine = RegopyEngine(compile_snapshot(snapshot), upstream_kinds=KINDS)
    try:
        decision = await engine.decide(subject_of(case["subject"]))
    finally:
        await engine.close()
    assert (decision.engine, decision.revision) == ("regopy", snapshot.revision)
    check(decision, case["expect"])


@pytest.mark.parametrize(("ecosystem", "case"), CASES)
async def test_golden_on_opa(
    ecosystem: str, case: dict[str, Any], tmp_path: Path, opa_server: OpaProcess
) -> None:
    subject_of, default, check = _golden(ecosystem)
    snapshot = load_snapshot(_policies(tmp_path, ecosystem, case, default))
    engine = OpaEngine(opa_server.url, upstream_kinds=KINDS)
    try:
        await engine.load(snapshot)
        decision = await engine.decide(subject_of(case["subject"]))
    finally:
        await engine.close()
    assert (decision.engine, decision.revision) == ("opa-http", snapshot.revision)
    check(decision, case["expect"])


@pytest.mark.parametrize(("ecosystem", "case"), CASES)
async def test_golden_on_opa_embedded(ecosystem: str, case: dict[str, Any], tmp_path: Path) -> None:
    require_golib()
    subject_of, default, check = _golden(ecosystem)
    snapshot = load_snapshot(_policies(tmp_path, ecosystem, case, default))
    engine = GolibEngine(workers=1, upstream_kinds=KINDS)
    try:
        await engine.load(snapshot)
        decision = await engine.decide(subject_of(case["subject"]))
    finally:
        await engine.close()
    assert (decision.engine, decision.revision) == ("opa-embedded", snapshot.revision)
    check(decision, case["expect"])
