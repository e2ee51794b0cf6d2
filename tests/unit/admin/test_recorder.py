"""DecisionRecorder: queue and return at once, write off the request path, drop when full."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror_store.metadata import SqliteMetadata
from proxy.admin.recorder import DecisionRecorder
from proxy.trust.records import TrustRecords


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[TrustRecords]:
    meta = SqliteMetadata(tmp_path / "m.sqlite3")
    yield await asyncio.to_thread(TrustRecords, meta)
    await meta.close()


def _event(i: int) -> dict[str, object]:
    return {
        "client": f"c{i}",
        "ecosystem": "pypi",
        "action": "file",
        "target": f"t{i}",
        "outcome": "allow",
        "rules": [],
        "reasons": [],
        "policy_revision": "r",
    }


async def test_recorder__writes_queued_events(records: TrustRecords) -> None:
    recorder = DecisionRecorder()
    recorder.sink(_event(0))  # before start: ignored, never an error
    recorder.start(records)
    for i in range(1, 4):
        recorder.sink(_event(i))
    await recorder.flushed()
    rows = await records.decisions()
    assert [r["client"] for r in rows] == ["c3", "c2", "c1"]
    await recorder.stop()


async def test_recorder__drops_and_counts_when_full(records: TrustRecords) -> None:
    drops: list[int] = []
    recorder = DecisionRecorder(on_drop=lambda: drops.append(1), maxsize=2)
    recorder.start(records)
    for i in range(5):  # no await in between: the writer cannot run, the queue fills
        recorder.sink(_event(i))
    assert recorder.dropped == 3
    assert len(drops) == 3
    await recorder.flushed()
    assert len(await records.decisions()) == 2
    await recorder.stop()


async def test_recorder__sink_from_a_worker_thread(records: TrustRecords) -> None:
    recorder = DecisionRecorder()
    recorder.start(records)
    await asyncio.to_thread(recorder.sink, _event(7))
    await asyncio.sleep(0)  # the loop runs the thread-safe callback
    await recorder.flushed()
    assert (await records.decisions())[0]["client"] == "c7"
    await recorder.stop()


async def test_recorder__stop_flushes_and_a_bad_event_does_not_stop_it(
    records: TrustRecords,
) -> None:
    recorder = DecisionRecorder()
    recorder.start(records)
    recorder.sink({"rules": object()})  # not JSON-serialisable: logged, skipped
    recorder.sink(_event(1))
    await recorder.stop()
    assert [r["client"] for r in await records.decisions()] == ["c1"]
    recorder.sink(_event(2))  # after stop: ignored
