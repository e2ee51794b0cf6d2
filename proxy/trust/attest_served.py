"""The served log and approvals, off the hot path: one ``Served`` row per artifact body sent.

The download handlers call ``notify_served`` after a GET answered 200/206 with a hook made
here (``pypi_hook``, ``hf_hook``); the hook only queues a task on the app's ``ServedRecorder``
and returns.  The task resolves the digest (waiting for a fill the response streamed from;
a fill that failed — hash mismatch, quarantine — records nothing), looks up the scan verdict
(hub files), writes the row and signs the approval (``Attestor``).  Tasks run at most
``CONCURRENCY`` at a time; beyond ``MAX_PENDING`` queued ones a row is dropped and counted —
recording never slows down or fails a request.

Hub decisions are made inside ``HfService.resolve``; ``capture_decision`` (around that call)
picks up its decision event through the app's decision sinks (``capture_sink``), so the row
carries that request's policy revision and not-enforced rule ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import structlog
from aiohttp import web

from mirror_store.digest import Digest
from mirror_store.fill import Fill, FillFailed

from ..appkeys import SERVED_LOG
from ..decision import Client, Decision
from ..hf.model import RepoRef
from ..pypi.filefacts import parse_filename
from ..scan import SCANNER_VERSION
from .attest import Attestor
from .records import Served, TrustRecords

log = structlog.get_logger("airlock.trust")

CONCURRENCY = 4
MAX_PENDING = 10_000
FLUSH_TIMEOUT = 5.0
OnServed = Callable[[Digest | Fill], None]
_MONITORED_RULE = re.compile(r"\[([^\[\]]+)\]$")


class ServedRecorder:
    def __init__(self, records: TrustRecords, attestor: Attestor | None = None) -> None:
        self._records = records
        self._attestor = attestor
        self._sem = asyncio.Semaphore(CONCURRENCY)
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.failed = 0

    def record(self, template: Served, content: Digest | Fill, scan: bool = False) -> None:
        """Queue the row for *template* (digest filled in from *content*); never blocks."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            log.warning("served_record_dropped", target=f"{template.project}/{template.filename}")
            return
        task = asyncio.create_task(self._write(replace(template, at=time.time()), content, scan))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, s: Served, content: Digest | Fill, scan: bool) -> None:
        try:
            if isinstance(content, Fill):
                try:
                    digest: str = await content.wait_finished()
                except FillFailed:
                    return  # the transfer was refused: nothing was served
            else:
                digest = content
            async with self._sem:
                verdict = await self._scan_verdict(digest) if scan else None
                s = replace(s, digest=digest, scan_verdict=verdict)
                await self._records.record_served(s)
                if self._attestor is not None:
                    await self._attestor.attest(s, str(s.extra.get("decision", "allow")))
        except Exception as e:  # a failed record must never surface anywhere near a request
            self.failed += 1
            log.warning("served_record_failed", target=f"{s.project}/{s.filename}", error=str(e))

    async def _scan_verdict(self, digest: str) -> str | None:
        verdict = await self._records.verdict(digest, SCANNER_VERSION)
        if verdict is None:
            return None
        if verdict.clean:
            return "clean"
        approval = await self._records.approval(digest)
        return "approved" if approval is not None and approval.verdict == "approve" else "findings"

    async def drain(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Wait until every queued row is written (tests; shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            await asyncio.wait(set(self._pending), timeout=max(0.0, deadline - time.monotonic()))

    async def close(self) -> None:
        await self.drain()
        for t in list(self._pending):
            t.cancel()
        for t in list(self._pending):
            with contextlib.suppress(BaseException):
                await t


def notify_served(
    request: web.Request, resp: web.StreamResponse, hook: OnServed | None, content: Digest | Fill
) -> None:
    """Call *hook* when *resp* sent a body for a GET (200 or 206); never raises."""
    if hook is None or request.method != "GET" or resp.status not in (200, 206):
        return
    try:
        hook(content)
    except Exception as e:
        log.warning("served_hook_failed", error=str(e))


# ---- PyPI ------------------------------------------------------------------------------------
def not_enforced(decision: Decision, filename: str) -> tuple[str, ...]:
    """Rule ids that found something about *filename* but were not enforced."""
    rules = {r.rule for r in decision.monitored}
    if not decision.enforced:
        rules |= {r.rule for r in decision.file_reasons(filename)}
    return tuple(sorted(rules))


def pypi_hook(
    request: web.Request,
    upstream: str,
    project: str,
    filename: str,
    client: Client,
    decision: Decision,
) -> OnServed | None:
    recorder = request.app.get(SERVED_LOG)
    if recorder is None:
        return None
    outcome = "monitor-deny" if decision.file_reasons(filename) else "allow"
    template = Served(
        client=client.id,
        ecosystem="pypi",
        project=project,
        version=parse_filename(filename)[0],
        filename=filename,
        digest="",
        upstream=upstream,
        policy_revision=decision.revision,
        rules=not_enforced(decision, filename),
        extra={"decision": outcome},
    )
    return lambda content: recorder.record(template, content)


# ---- Hub -------------------------------------------------------------------------------------
@dataclass
class CapturedDecision:
    event: Mapping[str, Any] | None = None
    revision: str = ""  # the engine's full revision when the event was made


_CAPTURE: ContextVar[CapturedDecision | None] = ContextVar("airlock_capture", default=None)


@contextlib.contextmanager
def capture_decision() -> Iterator[CapturedDecision]:
    """Keep the decision event logged inside the block (the last one wins)."""
    captured = CapturedDecision()
    token = _CAPTURE.set(captured)
    try:
        yield captured
    finally:
        _CAPTURE.reset(token)


def capture_sink(revision: Callable[[], str]) -> Callable[[Mapping[str, Any]], None]:
    """A decision sink feeding ``capture_decision``; *revision* reads the engine's revision."""

    def sink(event: Mapping[str, Any]) -> None:
        captured = _CAPTURE.get()
        if captured is not None:
            captured.event = event
            full = revision()
            short = str(event.get("policy_revision", ""))
            captured.revision = full if full.startswith(short) else short

    return sink


def hf_hook(
    request: web.Request,
    client: Client,
    repo: RepoRef,
    commit: str,
    path: str,
    captured: CapturedDecision,
) -> OnServed | None:
    recorder = request.app.get(SERVED_LOG)
    event = captured.event
    if recorder is None or event is None:
        return None
    outcome = str(event.get("outcome", "allow"))
    rules = {m.group(1) for m in map(_MONITORED_RULE.search, event.get("monitored", ())) if m}
    if outcome == "monitor-deny":
        rules |= set(event.get("rules", ()))
    template = Served(
        client=client.id,
        ecosystem="hf",
        project=f"{repo.api_type}/{repo.repo_id}",
        version=commit,
        filename=path,
        digest="",
        upstream=str(event.get("upstream", "hf")),
        policy_revision=captured.revision,
        rules=tuple(sorted(rules)),
        extra={"repo_type": repo.repo_type, "repo": repo.repo_id, "decision": outcome},
    )
    return lambda content: recorder.record(template, content, scan=True)
