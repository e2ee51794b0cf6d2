"""The per-upstream circuit breaker (on a clock the tests advance) and the limits' validation."""

from __future__ import annotations

import pytest
import structlog

from proxy.settings import SettingsError, load_settings
from proxy.upstream_limits import CircuitBreaker, CircuitOpen, UpstreamLimits
from tests.conftest import ManualClock

LIMITS = UpstreamLimits(breaker_failures=3, breaker_cooloff=30.0)


class Changes(list[tuple[str, str]]):
    """What the breaker reported to its observer (the metrics), in order."""


def breaker(clock: ManualClock, changes: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker("corp", LIMITS, clock, lambda name, state: changes.append((name, state)))


def test_breaker__opens_after_n_consecutive_failures_and_refuses_at_once() -> None:
    clock, changes = ManualClock(), Changes()
    b = breaker(clock, changes)
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            assert b.admit() is False
            b.failure("timed out")
        assert b.state == "closed"
        b.admit()
        b.failure("timed out")
    assert b.state == "open"
    assert changes == [("corp", "open")]
    assert [(e["event"], e["upstream"], e["failures"]) for e in logs] == [
        ("upstream_circuit_open", "corp", 3)
    ]
    clock.advance(29.9)
    with pytest.raises(CircuitOpen) as refused:
        b.admit()
    assert refused.value.message.startswith(
        "upstream corp circuit open after 3 consecutive failures (last: timed out)"
    )
    assert refused.value.status == 502


def test_breaker__a_success_resets_the_count() -> None:
    clock, changes = ManualClock(), Changes()
    b = breaker(clock, changes)
    for _ in range(2):
        b.admit()
        b.failure("answered 503")
    b.admit()
    b.success()
    for _ in range(2):
        b.admit()
        b.failure("answered 503")
    assert b.state == "closed"
    assert changes == []


def _open(clock: ManualClock, changes: list[tuple[str, str]]) -> CircuitBreaker:
    b = breaker(clock, changes)
    for _ in range(3):
        b.admit()
        b.failure("timed out")
    return b


def test_breaker__after_the_cooloff_one_probe_and_its_success_closes() -> None:
    clock, changes = ManualClock(), Changes()
    b = _open(clock, changes)
    clock.advance(30.0)
    assert b.admit() is True  # the probe
    with pytest.raises(CircuitOpen, match="a probe is under way"):
        b.admit()  # only one
    with structlog.testing.capture_logs() as logs:
        b.success()
    assert b.state == "closed"
    assert b.admit() is False
    assert changes == [("corp", "open"), ("corp", "closed")]
    assert [e["event"] for e in logs] == ["upstream_circuit_closed"]


def test_breaker__a_failed_probe_opens_it_for_another_cooloff() -> None:
    clock, changes = ManualClock(), Changes()
    b = _open(clock, changes)
    clock.advance(30.0)
    assert b.admit() is True
    b.failure("timed out")
    assert b.state == "open"
    clock.advance(29.0)
    with pytest.raises(CircuitOpen):
        b.admit()
    clock.advance(1.0)
    assert b.admit() is True
    assert changes == [("corp", "open"), ("corp", "open")]


def test_breaker__an_abandoned_probe_frees_the_slot() -> None:
    clock, changes = ManualClock(), Changes()
    b = _open(clock, changes)
    clock.advance(30.0)
    assert b.admit() is True
    b.abandoned(True)  # cancelled: neither success nor failure
    assert b.state == "open"
    assert b.admit() is True


def test_limits__defaults_and_validation() -> None:
    s = load_settings(None, env={})
    assert s.hf.limits == UpstreamLimits(5.0, 15.0, 3, 30.0)
    assert s.hf.timeout == 30.0
    env = {
        "AIRLOCK_PYPI__UPSTREAMS": (
            '[{name="corp", url="http://127.0.0.1:3141/simple/", timeout=0,'
            " limits={connect=0, first_byte=7200, breaker_failures=0}}]"
        ),
        "AIRLOCK_HF__LIMITS": "{breaker_cooloff=-1}",
    }
    with pytest.raises(SettingsError) as bad:
        load_settings(None, env=env)
    problems = bad.value.problems
    assert "pypi.upstreams[0].timeout: must be > 0" in problems
    assert "pypi.upstreams[0].limits.connect: must be > 0 and <= 3600 seconds, got 0.0" in problems
    assert any(p.startswith("pypi.upstreams[0].limits.first_byte: must be > 0") for p in problems)
    assert "pypi.upstreams[0].limits.breaker_failures: must be 1-1000" in problems
    assert any(p.startswith("hf.limits.breaker_cooloff: must be > 0") for p in problems)
    with pytest.raises(SettingsError) as typo:
        load_settings(None, env={"AIRLOCK_HF__LIMITS": "{conect=1}"})
    assert typo.value.problems[0].startswith(
        "hf.limits.conect: unknown key (did you mean 'connect'?)"
    )
    ok = load_settings(None, env={"AIRLOCK_HF__LIMITS": "{connect=2, first_byte=3}"})
    assert ok.hf.limits == UpstreamLimits(connect=2.0, first_byte=3.0)
