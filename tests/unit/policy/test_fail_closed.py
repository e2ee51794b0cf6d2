"""Any policy error, undefined or malformed result denies; bad policies never load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.decision import FileFacts, Subject
from proxy.policy.golib import GolibEngine
from proxy.policy.manager import PolicyManager, load_compiled, validate_in_child
from proxy.policy.rego import RegopyEngine, compile_snapshot
from proxy.policy.snapshot import PolicyError, load_snapshot
from tests.require import require_golib

SUBJECT = Subject("pypi", "page", "x", "default", files=(FileFacts("x-1.0.tar.gz", "1.0"),))
HEADER = "package airlock.pypi\n\nimport rego.v1\n\n"


def _policy(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "pypi.rego").write_text(HEADER + body)
    return root


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('decision := {"allow": x}\n\nx := 1 / 0\n', "policy evaluation failed"),
        ('decision := {"allow": "yes"}\n', "not a boolean"),
        ("decision := input.nothing\n", "undefined"),
        ('decision := {"allow": true, "deny": [{"rule": "r", "message": "m"}]}\n', "allows while"),
        ('decision := {"allow": false, "deny": [{"rule": 1}]}\n', "rule"),
        ('decision := {"allow": false, "deny": "no"}\n', "must be sets"),
    ],
)
async def test_broken_results_deny(tmp_path: Path, body: str, needle: str) -> None:
    engine = RegopyEngine(compile_snapshot(load_snapshot(_policy(tmp_path, body))))
    try:
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert d.allow is False
    assert d.error is not None
    assert d.reasons[0].rule == "policy-error"
    assert needle in d.reasons[0].message


async def test_missing_entrypoint_denies(tmp_path: Path) -> None:
    engine = RegopyEngine(
        compile_snapshot(load_snapshot(_policy(tmp_path, 'decision := {"allow": true}\n')))
    )
    try:
        d = await engine.decide(Subject("hf", "file", "a/b", "hub"))
    finally:
        await engine.close()
    assert d.allow is False
    assert "airlock.hf.decision" in (d.error or "")


async def test_timeout_denies(tmp_path: Path) -> None:
    root = _policy(tmp_path, 'decision := {"allow": true}\n')
    engine = RegopyEngine(compile_snapshot(load_snapshot(root)), timeout=1e-9)
    try:
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert d.allow is False
    assert "timed out" in (d.error or "")


async def test_the_in_process_opa_denies_on_timeout_and_on_broken_results(tmp_path: Path) -> None:
    require_golib()
    slow = GolibEngine(timeout=1e-9)
    await slow.load(load_snapshot(_policy(tmp_path, 'decision := {"allow": true}\n')))
    broken = GolibEngine()
    await broken.load(load_snapshot(_policy(tmp_path / "b", 'decision := {"allow": "yes"}\n')))
    try:
        late, bad = await slow.decide(SUBJECT), await broken.decide(SUBJECT)
        quick = await asyncio.gather(*(broken.decide(SUBJECT) for _ in range(20)))
    finally:
        await slow.close()
        await broken.close()
    assert (late.allow, bad.allow) == (False, False)
    assert "timed out" in (late.error or "")
    assert "not a boolean" in (bad.error or "")
    assert all(d.allow is False and "not a boolean" in (d.error or "") for d in quick)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("decision := {\n", "pypi.rego"),
        ('decision := {"allow": true}\nr := sprintf("%q", ["a"])\n', "%q"),
        ('decision := {"allow": true}\nr := http.send({})\n', "http.send"),
        ('decision := {"allow": x}\nx := 1 / 0\n', "canary"),
    ],
)
async def test_invalid_policies_are_rejected_with_a_location(
    tmp_path: Path, body: str, needle: str
) -> None:
    with pytest.raises(PolicyError, match=needle.replace("%", "%")):
        await load_compiled(_policy(tmp_path, body))


async def test_validation_survives_an_engine_crash(tmp_path: Path) -> None:
    """Validation runs in a child process: whatever the engine does there, we get a PolicyError."""
    snapshot = load_snapshot(_policy(tmp_path, 'decision := {"allow": true}\n'))
    from dataclasses import replace

    crashing = replace(snapshot, modules={"x.rego": "\x00"})
    with pytest.raises(PolicyError):
        await validate_in_child(crashing)


async def test_hot_reload_swaps_valid_and_keeps_old_on_error(tmp_path: Path) -> None:
    root = _policy(tmp_path, 'decision := {"allow": true}\n')
    _, compiled = await load_compiled(root)
    engine = RegopyEngine(compiled)
    manager = PolicyManager(root, engine, interval=0.05)
    manager.start()
    try:
        assert (await engine.decide(SUBJECT)).allow is True
        first = engine.revision
        (root / "pypi.rego").write_text(
            HEADER + 'decision := {"allow": false, "deny": [{"rule": "r", "message": "off"}]}\n'
        )
        status = await manager.wait_for_attempt(0)  # the watcher saw the change and reloaded
        assert status.last_reload_ok, status.last_error
        second = engine.revision
        assert second != first
        d = await engine.decide(SUBJECT)
        assert d.allow is False
        assert d.revision == second

        (root / "pypi.rego").write_text(HEADER + "decision := {\n")  # broken save
        await manager.wait_for_attempt(1)
        assert manager.status.last_reload_ok is False
        assert "pypi.rego" in (manager.status.last_error or "")
        assert engine.revision == second  # the old policy keeps serving
    finally:
        await manager.stop()
        await engine.close()
