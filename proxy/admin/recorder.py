"""Persists every decision event for the admin API, off the request path.

``DecisionRecorder.sink`` is a decision sink (``proxy.logging``): it only puts the event on a
bounded queue and returns.  A background task writes queued events with
``TrustRecords.record_decision``.  When the queue is full the event is dropped and counted (the
``decision`` log line still has it): persistence must never slow down or fail a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from ..trust.records import TrustRecords

log = structlog.get_logger("airlock.admin")

QUEUE_SIZE = 10_000
FLUSH_TIMEOUT = 5.0  # seconds given to queued events at shutdown


class DecisionRecorder:
    def __init__(
        self, on_drop: Callable[[], None] | None = None, maxsize: int = QUEUE_SIZE
    ) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self._on_drop = on_drop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0

    def sink(self, event: Mapping[str, Any]) -> None:
        """Queue *event*; never blocks.  Safe from a worker thread, too."""
        if self._loop is None:
            return  # not started (or stopped): the log line is the record
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._put(dict(event))
        else:
            self._loop.call_soon_threadsafe(self._put, dict(event))

    def _put(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()

    def start(self, records: TrustRecords) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._drain(records))

    async def _drain(self, records: TrustRecords) -> None:
        while True:
            event = await self._queue.get()
            try:
                await records.record_decision(event)
                self.written += 1
            except Exception as e:  # a bad event or a locked database must not stop the task
                log.warning("decision_record_failed", error=str(e))
            finally:
                self._queue.task_done()

    async def flushed(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        await self._queue.join()

    async def stop(self) -> None:
        self._loop = None
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), FLUSH_TIMEOUT)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
