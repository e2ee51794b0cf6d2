"""The clock decisions read: wall time for policy input (``now_ns``) and monotonic time for
cache ages.  The composition root passes one ``Clock`` down; tests pass one they advance."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Wall-clock time in nanoseconds since the epoch (the policy's ``input.now_ns``)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (ages of cached decisions)."""


class SystemClock:
    """The machine's clocks."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
