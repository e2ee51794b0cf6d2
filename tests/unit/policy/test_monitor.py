"""Per-rule monitor mode: reasons of monitored rules are recorded but do not block."""

from __future__ import annotations

from proxy.decision import Decision, Reason
from proxy.policy.engine import apply_monitor

COOL = Reason("cooldown", "too new")
SQUAT = Reason("typosquat", "looks like requests")


def test_monitored_rules_leave_the_verdict() -> None:
    d = Decision(allow=False, reasons=(SQUAT,), file_denials={"a.whl": (COOL,), "b.whl": (COOL,)})
    m = apply_monitor(d, frozenset({"cooldown"}))
    assert m.allow is False
    assert m.reasons == (SQUAT,)
    assert m.file_denials == {}
    assert m.monitored == (COOL,)
    both = apply_monitor(d, frozenset({"cooldown", "typosquat"}))
    assert both.allow is True
    assert not both.blocks_file("a.whl")
    assert set(both.monitored) == {COOL, SQUAT}


def test_errors_are_never_monitored_away() -> None:
    d = Decision(allow=False, reasons=(Reason("policy-error", "x"),), error="x")
    assert apply_monitor(d, frozenset({"policy-error"})) is d


def test_unrelated_rules_keep_the_decision_object() -> None:
    d = Decision(allow=True, file_denials={"a.whl": (COOL,)})
    assert apply_monitor(d, frozenset({"typosquat"})) is d
