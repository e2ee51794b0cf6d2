"""OpaEngine against a real OPA (the stand-in server on opa-golib): decisions, delivery, and
every way it must fail closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.decision import FileFacts, Subject
from proxy.policy.manager import PolicyManager
from proxy.policy.opa import CircuitBreaker, OpaEngine
from proxy.policy.snapshot import PolicyError, Snapshot, load_snapshot
from tests.fakes.opa_server import OpaProcess, opa_process
from tests.require import require_golib

HEADER = "package airlock.pypi\n\nimport rego.v1\n\n"
CANARY = 'decision := {"allow": true} if input.project == "canary"\n'
ALLOW_X = HEADER + 'decision := {"allow": input.project == "x"}\n'
DENY_ALL = HEADER + 'decision := {"allow": false, "deny": [{"rule": "off", "message": "off"}]}\n'
SUBJECT = Subject("pypi", "page", "x", "default", files=(FileFacts("x-1.0.tar.gz", "1.0"),))


@pytest.fixture(scope="module")
def opa_server() -> Iterator[OpaProcess]:
    require_golib()
    with opa_process() as server:
        yield server


@pytest.fixture
def opa(opa_server: OpaProcess) -> OpaProcess:
    opa_server.reset()
    return opa_server


def _snapshot(tmp_path: Path, modules: dict[str, str], name: str = "p") -> Snapshot:
    root = tmp_path / name
    (root / "data").mkdir(parents=True, exist_ok=True)
    for rel, src in modules.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(src)
    return load_snapshot(root)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _engine(
    opa: OpaProcess,
    snapshot: Snapshot,
    timeout: float = 2.0,
    breaker: CircuitBreaker | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> OpaEngine:
    engine = OpaEngine(opa.url, timeout=timeout, breaker=breaker, clock=clock)
    try:
        await engine.load(snapshot)
    except BaseException:
        await engine.close()
        raise
    return engine


async def test_decides_through_opa_and_records_the_revision(
    opa: OpaProcess, tmp_path: Path
) -> None:
    snap = _snapshot(tmp_path, {"pypi.rego": ALLOW_X})
    engine = await _engine(opa, snap)
    try:
        allowed = await engine.decide(SUBJECT)
        denied = await engine.decide(Subject("pypi", "page", "y", "default"))
    finally:
        await engine.close()
    assert (allowed.allow, allowed.engine, allowed.revision) == (True, "opa-http", snap.revision)
    assert denied.allow is False
    assert denied.error is None
    assert opa.policies() == {"airlock/pypi.rego": ALLOW_X}
    stats = opa.stats()
    assert stats["requests"]["POST /v1/data/airlock/pypi/decision"] >= 2  # canary + ours
    assert stats["queries"]["POST /v1/data/airlock/pypi/decision"] == {
        "strict-builtin-errors": "true"
    }


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (CANARY, "undefined"),
        (
            CANARY
            + 'decision := {"allow": to_number(input.project) > 0} if input.project == "x"\n',
            "eval_builtin_error: to_number",  # OPA's own error text, kept (strict built-ins)
        ),
        (CANARY + 'decision := {"allow": "yes"} if input.project == "x"\n', "not a boolean"),
        (
            CANARY + 'decision := {"allow": true, "deny": [{"rule": "r", "message": "m"}]} '
            'if input.project == "x"\n',
            "allows while",
        ),
    ],
)
async def test_broken_results_deny(opa: OpaProcess, tmp_path: Path, body: str, needle: str) -> None:
    engine = await _engine(opa, _snapshot(tmp_path, {"pypi.rego": HEADER + body}))
    try:
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert d.allow is False
    assert d.reasons[0].rule == "policy-error"
    assert needle in (d.error or "")
    assert engine.breaker.failures == 0  # OPA answered: a policy error is not an outage


async def test_timeout_denies(opa: OpaProcess, tmp_path: Path) -> None:
    engine = await _engine(opa, _snapshot(tmp_path, {"pypi.rego": ALLOW_X}), timeout=0.2)
    opa.faults(delay=1.0, routes=["POST /v1/data"])
    try:
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert d.allow is False
    assert "did not answer within 0.2s" in (d.error or "")  # not the 1 s answer, waited for


async def test_unreachable_opa_opens_the_circuit_and_denies_without_asking(
    opa: OpaProcess, tmp_path: Path
) -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=5.0)
    clock = Clock()
    snapshot = _snapshot(tmp_path, {"pypi.rego": ALLOW_X})
    engine = await _engine(opa, snapshot, breaker=breaker, clock=clock)
    try:
        opa.faults(status=503)  # what a gateway answers while OPA is down
        for _ in range(2):
            assert "HTTP 503" in ((await engine.decide(SUBJECT)).error or "")
        asked = opa.stats()["requests"]["POST /v1/data/airlock/pypi/decision"]
        opa.faults()  # OPA is back, but the circuit stays open for the cooldown
        for _ in range(20):
            clock.now += 0.2  # 4 s in all: still inside the 5 s cooldown
            d = await engine.decide(SUBJECT)
            assert d.allow is False
            assert "circuit open" in (d.error or "")
        assert opa.stats()["requests"]["POST /v1/data/airlock/pypi/decision"] == asked
        clock.now += 1.0  # the cooldown is over: one probe, whose success closes the circuit
        assert (await engine.decide(SUBJECT)).allow is True
        assert opa.stats()["requests"]["POST /v1/data/airlock/pypi/decision"] == asked + 1
        assert (await engine.decide(SUBJECT)).allow is True
    finally:
        await engine.close()


async def test_connection_refused_denies(tmp_path: Path) -> None:
    require_golib()
    with opa_process() as own:  # a server of our own, to stop it for real
        engine = await _engine(own, _snapshot(tmp_path, {"pypi.rego": ALLOW_X}))
        assert (await engine.decide(SUBJECT)).allow is True
    try:
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert d.allow is False
    assert "unreachable" in (d.error or "")


async def test_rejected_push_keeps_the_old_revision(opa: OpaProcess, tmp_path: Path) -> None:
    good = _snapshot(tmp_path, {"pypi.rego": ALLOW_X, "lib/util.rego": "package airlock.lib\n"})
    engine = await _engine(opa, good)
    # regopy would accept this (it has no safety checks); OPA's compiler refuses it.
    bad = _snapshot(
        tmp_path,
        {"pypi.rego": HEADER + 'decision := {"allow": y}\n', "lib/util.rego": "package other\n"},
        name="bad",
    )
    try:
        with pytest.raises(PolicyError, match=r"rego_unsafe_var_error.*airlock/pypi\.rego"):
            await engine.load(bad)
        assert engine.revision == good.revision
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert (d.allow, d.revision) == (True, good.revision)
    # the half of the push OPA had accepted (lib/util.rego) was rolled back
    assert opa.policies() == {MODULE: src for MODULE, src in _ids(good).items()}


def _ids(snap: Snapshot) -> dict[str, str]:
    return {f"airlock/{k}": v for k, v in snap.modules.items()}


async def test_changes_that_only_compile_together_are_pushed(
    opa: OpaProcess, tmp_path: Path
) -> None:
    """A function renamed in two modules at once: no single PUT order compiles."""
    lib = 'package airlock.lib\n\nimport rego.v1\n\n{name}(p) := p == "x"\n'
    use = HEADER + 'import data.airlock.lib\n\ndecision := {{"allow": lib.{name}(input.project)}}\n'
    first = _snapshot(
        tmp_path,
        {
            "lib/names.rego": lib.format(name="ok_name"),
            "pypi.rego": use.format(name="ok_name"),
            "old.rego": "package airlock.old\n",
        },
    )
    second = _snapshot(
        tmp_path,
        {"lib/names.rego": lib.format(name="good"), "pypi.rego": use.format(name="good")},
        name="second",
    )
    engine = await _engine(opa, first)
    try:
        await engine.load(second)
        d = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert (d.allow, d.revision) == (True, second.revision)
    assert opa.policies() == _ids(second)  # old.rego deleted


async def test_decisions_during_a_push_wait_and_use_the_new_revision(
    opa: OpaProcess, tmp_path: Path
) -> None:
    old = _snapshot(tmp_path, {"pypi.rego": ALLOW_X})
    new = _snapshot(tmp_path, {"pypi.rego": DENY_ALL}, name="new")
    engine = await _engine(opa, old)
    opa.faults(delay=0.3, routes=["PUT /v1/policies"])
    try:
        push = asyncio.create_task(engine.load(new))
        await asyncio.sleep(0)  # the push runs up to its first request to OPA
        assert not engine._open.is_set(), "the push closes the gate before it talks to OPA"
        during = await asyncio.gather(*(engine.decide(SUBJECT) for _ in range(5)))
        await push
    finally:
        await engine.close()
    for d in during:
        assert d.revision == new.revision
        assert d.allow is False
        assert [r.rule for r in d.reasons] == ["off"]


async def test_restarted_opa_gets_the_policy_again(opa: OpaProcess, tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, {"pypi.rego": ALLOW_X})
    engine = await _engine(opa, snap)
    try:
        opa.reset()  # OPA restarted with an empty store
        first = await engine.decide(SUBJECT)  # finds nothing, so schedules a re-push
        resync = engine._resync
        assert resync is not None, "no re-push was scheduled"
        await resync
        again = await engine.decide(SUBJECT)
    finally:
        await engine.close()
    assert first.allow is False
    assert "undefined" in (first.error or "")
    assert (again.allow, again.revision) == (True, snap.revision)


async def test_hot_reload_through_the_manager(opa: OpaProcess, tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "pypi.rego").write_text(ALLOW_X)
    engine = await _engine(opa, load_snapshot(root))
    manager = PolicyManager(root, engine, interval=0)
    try:
        first = engine.revision
        (root / "pypi.rego").write_text(DENY_ALL)
        status = await manager.reload()
        assert status.last_reload_ok, status.last_error
        assert engine.revision != first
        assert (await engine.decide(SUBJECT)).allow is False

        second = engine.revision
        (root / "pypi.rego").write_text(HEADER + 'decision := {"allow": y}\n')  # OPA refuses
        status = await manager.reload()
        assert status.last_reload_ok is False
        assert "rego_unsafe_var_error" in (status.last_error or "")
        assert engine.revision == second
        assert (await engine.decide(SUBJECT)).revision == second
    finally:
        await engine.close()
