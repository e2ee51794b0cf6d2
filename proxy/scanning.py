"""The scan gate: every model or dataset file is scanned once per sha256 before it is served.

Verdicts are cached per (digest, scanner version), so a new scanner version rescans on the next
request.  Findings become policy input (``input.facts.scan``) together with any admin approval
of the digest, so the policy decides (by default: quarantine unless an admin approved it).

The first fetch of a file streams to the client while it is verified and stored; the scan runs
on the stored blob before the client's last byte.  If it finds something and no admin approved
the digest, the blob stays stored (it is never fetched twice) and that transfer is cut; the
client's retry then gets the policy's answer (403 with the finding, or the file where the policy
exempts it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import structlog

from mirror_store.fill import FillFailed

from .scan import SCANNER_VERSION, Limits, load_allowlist, names, scan_file
from .trust.records import TrustRecords, Verdict

log = structlog.get_logger("airlock.scan")


def summary(verdict: Verdict) -> str:
    parts = []
    for f in verdict.findings[:3]:
        where = f" [{f['location']}]" if f.get("location") else ""
        parts.append(f"{f['message']}{where}")
    more = len(verdict.findings) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def named(verdict: Verdict, name: str) -> Verdict:
    """The digest's verdict as it applies to the file ``name``: unrecognised content under a
    model-like name is a finding (fail closed; see ``proxy.scan.names``)."""
    extra = names.finding(verdict.format, name)
    if extra is None or verdict.findings:  # findings already block it, with a precise reason
        return verdict
    return replace(verdict, findings=(*verdict.findings, asdict(extra)))


class ScanGate:
    def __init__(
        self,
        records: TrustRecords,
        allowlist: Path | None = None,
        limits: Limits | None = None,
        workers: int = 2,
        on_verdict: Callable[[str], None] | None = None,
    ) -> None:
        self._records = records
        self._allowlist = allowlist
        self._limits = limits or Limits()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="airlock-scan")
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}
        self._on_verdict = on_verdict

    def _scan(self, digest: str, path: Path) -> Verdict:
        extra = load_allowlist(self._allowlist) if self._allowlist else ()
        result = scan_file(path, limits=self._limits, extra_allowed_globals=extra, name="")
        return Verdict(
            digest,
            SCANNER_VERSION,
            result.format,
            tuple(asdict(f) for f in result.findings),
            time.time(),
        )

    async def verdict(self, digest: str, path: Path) -> Verdict:
        """The cached verdict for this scanner version, scanning once if there is none."""
        cached = await self._records.verdict(digest, SCANNER_VERSION)
        if cached is not None:
            return cached
        fut = self._inflight.get(digest)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[digest] = fut
        try:
            try:
                verdict = await asyncio.get_running_loop().run_in_executor(
                    self._pool, self._scan, digest, path
                )
            except OSError as e:  # unreadable blob: fail closed with a finding
                verdict = Verdict(
                    digest,
                    SCANNER_VERSION,
                    "unknown",
                    (
                        {
                            "rule": "unscannable",
                            "message": f"cannot read the file: {e}",
                            "location": "",
                        },
                    ),
                    time.time(),
                )
            await self._records.record_verdict(verdict)
            if self._on_verdict is not None:
                self._on_verdict("clean" if verdict.clean else "findings")
            log.info(
                "scanned",
                digest=digest,
                format=verdict.format,
                findings=[f["rule"] for f in verdict.findings],
            )
            fut.set_result(verdict)
            return verdict
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()
            raise
        finally:
            del self._inflight[digest]

    async def facts(self, digest: str, path: Path, name: str = "") -> dict[str, Any]:
        """``input.facts.scan`` for a stored file published as ``name``."""
        verdict = named(await self.verdict(digest, path), name)
        approval = await self._records.approval(digest) if verdict.findings else None
        return {
            "scanned": True,
            "digest": digest,
            "format": verdict.format,
            "scanner_version": verdict.scanner_version,
            "findings": list(verdict.findings),
            "summary": summary(verdict) if verdict.findings else "",
            "approval": approval.verdict if approval else None,
            "approval_reason": approval.reason if approval else None,
        }

    async def check_new(self, digest: str, path: Path, name: str = "") -> None:
        """Hook for a freshly stored file: raise FillFailed (cut the transfer) if quarantined."""
        verdict = named(await self.verdict(digest, path), name)
        if verdict.clean:
            return
        approval = await self._records.approval(digest)
        if approval is not None and approval.verdict == "approve":
            return
        raise FillFailed(f"quarantined by the model scanner: {summary(verdict)} (sha256 {digest})")

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
