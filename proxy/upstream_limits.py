"""How long airlock waits for one upstream, and when it stops asking: deadlines and a breaker.

``UpstreamLimits`` is the per-upstream setting (``[[pypi.upstreams]] limits``, ``[hf] limits``):
a connect deadline, a first-byte deadline (connection to response headers) and the circuit
breaker's threshold and cool-off; the read-gap deadline is the upstream's ``timeout``.

``CircuitBreaker`` guards one upstream: after ``breaker_failures`` consecutive failures (no
answer in time, a broken connection, a 5xx) it opens, and for ``breaker_cooloff`` seconds every
request to that upstream fails at once with ``CircuitOpen``, so stored content is answered
from the store without waiting.  Then one request is let through as a probe: its success
closes the circuit, its failure opens it for another cool-off.  Time is read on the injected
``Clock``'s monotonic clock.  Messages name the upstream by its configured name only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog

from .clock import SYSTEM_CLOCK, Clock
from .errors import UpstreamUnavailable

log = structlog.get_logger("airlock.upstream")

# (upstream name, "open" | "closed"): metrics of breaker changes
CircuitObserver = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    connect: float = 5.0  # seconds to open a connection (TCP and TLS)
    first_byte: float = 15.0  # seconds from the request to its response headers (connecting
    # included: a server that accepts and never answers costs this long, not connect + this)
    breaker_failures: int = 3  # consecutive failures that open the circuit
    breaker_cooloff: float = 30.0  # seconds an open circuit fails at once, then one probe


def check_limits(where: str, timeout: float, limits: UpstreamLimits, problems: list[str]) -> None:
    """Append a readable line to *problems* for every bad value of an upstream's ``timeout``
    (the read gap) and ``limits`` (settings validation; *where* is its dotted path)."""
    if timeout <= 0:
        problems.append(f"{where}.timeout: must be > 0")
    for key in ("connect", "first_byte", "breaker_cooloff"):
        value = getattr(limits, key)
        if not 0 < value <= 3600:
            problems.append(f"{where}.limits.{key}: must be > 0 and <= 3600 seconds, got {value}")
    if not 1 <= limits.breaker_failures <= 1000:
        problems.append(f"{where}.limits.breaker_failures: must be 1-1000")


def client_timeout(limits: UpstreamLimits, read_gap: float) -> aiohttp.ClientTimeout:
    """aiohttp's per-request timeouts: connect, and the gap between reads (the wait for the
    headers as a whole is bounded by ``limits.first_byte``, around the request)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=limits.connect, sock_read=read_gap)


class CircuitOpen(UpstreamUnavailable):
    """The upstream's circuit is open: it was not asked."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        limits: UpstreamLimits | None = None,
        clock: Clock = SYSTEM_CLOCK,
        observe: CircuitObserver | None = None,
    ) -> None:
        limits = limits or UpstreamLimits()
        self.name = name
        self.threshold = limits.breaker_failures
        self.cooloff = limits.breaker_cooloff
        self._clock = clock
        self._observe = observe
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.last_error = ""

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.probing else "open"

    def admit(self) -> bool:
        """Before a request: True if it is the probe of an open circuit.

        Raises:
            CircuitOpen: the circuit is open (cooling off, or its probe is under way).
        """
        if self.opened_at is None:
            return False
        left = self.opened_at + self.cooloff - self._clock.monotonic()
        if left <= 0 and not self.probing:
            self.probing = True
            log.info("upstream_circuit_probe", upstream=self.name)
            return True
        wait = f"asking again in {max(left, 0):.0f} s" if left > 0 else "a probe is under way"
        raise CircuitOpen(
            f"upstream {self.name} circuit open after {self.failures} consecutive failures "
            f"(last: {self.last_error}); not asked, {wait}"
        )

    def success(self) -> None:
        was_open = self.opened_at is not None
        self.failures, self.opened_at, self.probing = 0, None, False
        if was_open:
            log.info("upstream_circuit_closed", upstream=self.name)
            if self._observe is not None:
                self._observe(self.name, "closed")

    def failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        probe_failed = self.probing
        self.probing = False
        if probe_failed or (self.opened_at is None and self.failures >= self.threshold):
            self.opened_at = self._clock.monotonic()
            log.warning(
                "upstream_circuit_open",
                upstream=self.name,
                failures=self.failures,
                cooloff=self.cooloff,
                probe=probe_failed,
                error=error,
            )
            if self._observe is not None:
                self._observe(self.name, "open")

    def abandoned(self, probe: bool) -> None:
        """A request ended without an outcome (cancelled): a probe slot is freed."""
        if probe:
            self.probing = False
