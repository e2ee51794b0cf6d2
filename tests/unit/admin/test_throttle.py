"""LoginThrottle: windows, lockouts, resets and bounded tables (clock injected); its settings."""

from __future__ import annotations

import pytest

from proxy.admin.throttle import LoginThrottle, source_key
from proxy.settings import SettingsError, load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **kw: float) -> LoginThrottle:
    args: dict[str, float] = dict(max_failures=3, window=100.0, lockout=10.0, lockout_max=35.0)
    args.update(kw)
    return LoginThrottle(
        max_failures=int(args["max_failures"]),
        window=args["window"],
        lockout=args["lockout"],
        lockout_max=args["lockout_max"],
        tracked=int(args.get("tracked", 100)),
        clock=clock,
    )


def _fail(t: LoginThrottle, n: int, source: str = "1.2.3.4", account: str | None = None) -> None:
    for _ in range(n):
        t.failed(source, account, "page", "unknown token")


def test_throttle__locks_after_max_failures_for_the_lockout() -> None:
    clock = Clock()
    t = _throttle(clock)
    _fail(t, 2)
    assert t.refused("1.2.3.4", None, "page") is None
    _fail(t, 1)
    lock = t.refused("1.2.3.4", None, "page")
    assert lock is not None
    assert (lock.by, lock.retry_after, lock.failures) == ("source", 10.0, 3)
    assert t.refused("5.6.7.8", None, "page") is None
    clock.now += 9.5
    lock = t.refused("1.2.3.4", None, "page")
    assert lock is not None
    assert lock.retry_after_header == "1"
    clock.now += 0.5
    assert t.refused("1.2.3.4", None, "page") is None


def test_throttle__failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    t = _throttle(clock)
    _fail(t, 2)
    clock.now += 100.0
    _fail(t, 2)
    assert t.refused("1.2.3.4", None, "page") is None
    _fail(t, 1)
    assert t.refused("1.2.3.4", None, "page") is not None


def test_throttle__lockouts_double_up_to_the_maximum_and_reset_after_a_quiet_window() -> None:
    clock = Clock()
    t = _throttle(clock)
    for expected in (10.0, 20.0, 35.0, 35.0):
        _fail(t, 3)
        lock = t.refused("1.2.3.4", None, "page")
        assert lock is not None
        assert lock.retry_after == expected
        clock.now += expected
    clock.now += 100.0  # a window after the last lockout ended
    _fail(t, 3)
    lock = t.refused("1.2.3.4", None, "page")
    assert lock is not None
    assert lock.retry_after == 10.0


def test_throttle__a_success_resets_the_account_not_the_source() -> None:
    clock = Clock()
    t = _throttle(clock)
    _fail(t, 2, account="ci-runner")
    t.succeeded("ci-runner")
    _fail(t, 2, source="9.9.9.9", account="ci-runner")
    assert t.refused("8.8.8.8", "ci-runner", "page") is None  # 2 since the reset, not 4
    _fail(t, 1)  # the source's third failure: its count was not reset
    lock = t.refused("1.2.3.4", None, "page")
    assert lock is not None
    assert lock.by == "source"


def test_throttle__account_lock_applies_from_any_source() -> None:
    clock = Clock()
    t = _throttle(clock)
    for source in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        _fail(t, 1, source=source, account="ci-runner")
    lock = t.refused("4.4.4.4", "ci-runner", "api")
    assert lock is not None
    assert lock.by == "account"
    assert t.refused("4.4.4.4", "root-admin", "api") is None


def test_throttle__tables_stay_bounded_when_sources_and_accounts_rotate() -> None:
    t = _throttle(Clock(), tracked=50)
    for i in range(1000):
        t.failed(f"10.0.{i // 250}.{i % 250}", f"account-{i}", "api", "unknown token")
    assert len(t.sources) == 50
    assert len(t.accounts) == 50


def test_source_key__peer_address_ipv6_by_its_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9")
    assert source_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key(None) == source_key("") == "unknown"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("LOGIN_MAX_FAILURES", "0", "access.login_max_failures: must be 1-1000"),
        ("LOGIN_WINDOW", "0", "access.login_window: must be > 0"),
        ("LOGIN_WINDOW", "nan", "access.login_window: must be > 0"),
        ("LOGIN_LOCKOUT", "-1", "access.login_lockout: must be > 0"),
        ("LOGIN_LOCKOUT", "7200", "access.login_lockout: must be > 0 and <= access.login_lock"),
        ("LOGIN_LOCKOUT_MAX", "inf", "access.login_lockout_max: must be <= 86400"),
        ("LOGIN_TRACKED", "0", "access.login_tracked: must be 1-1000000"),
        ("LOGIN_TRACKED", "'many'", "access.login_tracked: expected an integer"),
    ],
)
def test_settings__login_throttle_values_are_validated(key: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(env={f"AIRLOCK_ACCESS__{key}": value})
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


def test_settings__login_throttle_defaults_and_overrides() -> None:
    s = load_settings(env={"AIRLOCK_ACCESS__LOGIN_MAX_FAILURES": "10"})
    assert s.access.login_max_failures == 10
    assert (s.access.login_window, s.access.login_lockout) == (300.0, 60.0)
    assert (s.access.login_lockout_max, s.access.login_tracked) == (3600.0, 10_000)
