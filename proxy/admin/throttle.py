"""A brake on guessing admin credentials: failed checks counted per source and per account.

Every failed admin credential check (the page's login form, a token on the admin API or
``/metrics``) counts against its *source* (the peer address: airlock trusts no forwarded-for
header; IPv6 addresses count per /64, the block one host is usually given) and, when the token
is a known one (a client without the admin scope), against that client, the *account*.
``max_failures`` failures within ``window`` seconds lock the source or account out for
``lockout`` seconds, doubling with each further lockout up to ``lockout_max``; a locked source or
account is refused before its credential is even looked at, so a correct token is refused too
and guessing cannot go on.  A successful login resets its account.  Both tables are bounded
LRUs: an attacker rotating addresses or names evicts old entries, never grows memory.

Tokens are random and do not say whose they are, so a wrong token names no account: the
per-source brake is what slows guessing; the per-account one catches a known client hammering
the admin login from many addresses.  Behind a reverse proxy every request has the proxy's
address, so one guessing client locks the admin login for everyone behind it until the lockout
ends (failing closed).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..lru import SizedLru
from ..settings import AccessSettings

log = structlog.get_logger("airlock.admin")

MAX_DOUBLINGS = 32  # 2**32 lockouts is far past any lockout_max; keeps the float finite


@dataclass(slots=True)
class _Record:
    failures: int = 0  # in the current window
    window_start: float = 0.0
    locked_until: float = 0.0
    lockouts: int = 0  # lockouts in a row: each doubles the next


@dataclass(frozen=True, slots=True)
class Lock:
    """Why an attempt is refused: which key is locked, for how long, after how many failures."""

    by: str  # "source" or "account"
    retry_after: float
    failures: int

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))

    def message(self) -> str:
        who = "this address" if self.by == "source" else "this client"
        return (
            f"Too many failed admin logins from {who}; "
            f"try again in {self.retry_after_header} seconds."
        )


def source_key(remote: str | None) -> str:
    """The source an attempt counts against: the peer address, an IPv6 one by its /64."""
    if not remote:
        return "unknown"  # no peer address (a unix socket): all such attempts share one key
    try:
        ip = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return remote[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 60.0,
        lockout_max: float = 3600.0,
        tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._lockout = lockout
        self._lockout_max = lockout_max
        self._clock = clock
        self.sources: SizedLru[str, _Record] = SizedLru(tracked)
        self.accounts: SizedLru[str, _Record] = SizedLru(tracked)

    @classmethod
    def from_settings(
        cls, access: AccessSettings, clock: Callable[[], float] = time.monotonic
    ) -> LoginThrottle:
        return cls(
            max_failures=access.login_max_failures,
            window=access.login_window,
            lockout=access.login_lockout,
            lockout_max=access.login_lockout_max,
            tracked=access.login_tracked,
            clock=clock,
        )

    def refused(self, source: str, account: str | None, via: str) -> Lock | None:
        """The lock refusing this attempt (logged as ``admin_login_throttled``), else None."""
        now = self._clock()
        lock = self._lock("source", self.sources.peek(source), now)
        if lock is None and account is not None:
            lock = self._lock("account", self.accounts.peek(account), now)
        if lock is not None:
            log.warning(
                "admin_login_throttled",
                source=source,
                account=account,
                via=via,
                locked=lock.by,
                failures=lock.failures,
                retry_after=round(lock.retry_after, 3),
            )
        return lock

    def failed(self, source: str, account: str | None, via: str, reason: str) -> None:
        """Count a failed check against *source* and *account*; logged as ``admin_login_failed``."""
        now = self._clock()
        rec = self._count(self.sources, source, now)
        lockout = max(rec.locked_until - now, 0.0)
        failures = rec.failures
        if account is not None:
            acc = self._count(self.accounts, account, now)
            lockout = max(lockout, acc.locked_until - now)
            failures = max(failures, acc.failures)
        log.warning(
            "admin_login_failed",
            source=source,
            account=account,
            via=via,
            reason=reason,
            failures=failures,
            lockout=round(lockout, 3),
        )

    def succeeded(self, account: str) -> None:
        """A successful login: the account starts from zero (its source's count stays)."""
        self.accounts.pop(account)

    # ---- internals ----------------------------------------------------------------------------
    @staticmethod
    def _lock(by: str, rec: _Record | None, now: float) -> Lock | None:
        if rec is None or now >= rec.locked_until:
            return None
        return Lock(by, rec.locked_until - now, rec.failures)

    def _count(self, table: SizedLru[str, _Record], key: str, now: float) -> _Record:
        rec = table.get(key) or table.put(key, _Record(window_start=now))
        if now < rec.locked_until:  # a check that began before the lock: count, lock no longer
            rec.failures += 1
            return rec
        if rec.locked_until and now >= rec.locked_until + self._window:
            rec.lockouts = 0  # the last lockout is long over: the next one starts from the base
        if rec.failures >= self._max or now - rec.window_start >= self._window:
            rec.failures, rec.window_start = 0, now  # a lockout ended, or the window did
        rec.failures += 1
        if rec.failures >= self._max:
            rec.lockouts += 1
            doublings = min(rec.lockouts - 1, MAX_DOUBLINGS)
            rec.locked_until = now + min(self._lockout * 2**doublings, self._lockout_max)
        return rec
