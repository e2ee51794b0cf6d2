"""Process-wide tuning of Python's garbage collector, applied by ``airlock serve`` (and the policy
benchmark, so that it measures what the server runs).  Nothing happens at import time.

Go's collector inside the embedded OPA engine is tuned by the environment the process starts
with (``GOGC=400 GOMEMLIMIT=192MiB``: ``make serve``, the image and the systemd unit set them).
The Go runtime reads its environment from the process's start-up block, so setting it from
Python is too late.  At Go's default (GOGC=100) the collections of its small heap put
single-file decisions at p99 ≈ 2 ms; at 400, p99 ≈ 0.7 ms (measured here).
"""

from __future__ import annotations

import gc

# Python's cycle collector.  A cold project page is tens of thousands of short-lived objects;
# with the default thresholds the collector walked the heap again and again and took ~40% of a
# cold pass (measured).
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Freeze what exists (start-up objects live for good: keep them out of every collection)
    and collect young generations less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
