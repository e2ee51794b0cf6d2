"""Wiring of the Hub side: ``setup_hf(app)`` adds the routes, the hub-style error hook and a
cleanup_ctx that builds the layers from the app's shared store, filler and policy engine.

Runs after the core ``_lifecycle`` (whose keys it reads), and closes its own upstream session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from mirror_store.blobs import BlobStore

from ..appkeys import BLOBS, CLOCK, ENGINE, FILLER, META, METRICS, RECORDS, SETTINGS
from ..egress.connector import guarded_session
from ..egress.guard import EgressGuard
from ..errors import ERROR_HOOK
from ..scanning import ScanGate
from ..settings import default_hf_upstream
from ..trust.records import TrustRecords
from ..upstream_limits import CircuitBreaker
from . import routes
from .approvals import PolicyData
from .errors import hub_error_hook
from .files import HfFiles
from .hub_client import HubClient
from .identity import IdentityStore, SeenCommits
from .model import FileMeta
from .policy import HfPolicy
from .service import HfService
from .sources import HubSource
from .stored import HfTables

log = structlog.get_logger("airlock.hf")


async def _scan_gate(app: web.Application) -> ScanGate:
    if RECORDS not in app:  # shared with the admin API
        app[RECORDS] = await asyncio.to_thread(TrustRecords, app[META])  # schema: sync sqlite
    allowlist = app[SETTINGS].policy.path / "scan" / "pickle-allowlist.json"
    metrics = app.get(METRICS)
    return ScanGate(
        app[RECORDS],
        allowlist if allowlist.is_file() else None,
        on_verdict=metrics.scan_verdict if metrics is not None else None,
    )


def _scan_facts(
    files: HfFiles, gate: ScanGate, blobs: BlobStore
) -> Callable[[FileMeta], Awaitable[dict[str, Any] | None]]:
    async def facts(meta: FileMeta) -> dict[str, Any] | None:
        digest = await files.known_digest(meta)
        if digest is None:
            return None  # not stored yet: scanned when the first fetch completes
        return await gate.facts(digest, blobs.blob_path(digest), meta.path)

    return facts


def setup_hf(app: web.Application) -> None:
    routes.setup_routes(app)
    app[ERROR_HOOK] = hub_error_hook  # renders only /hf errors; others stay plain text
    app.cleanup_ctx.append(_hf_lifecycle)


async def _hf_lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hf = settings.hf
    tables = await HfTables.install(app[META])
    upstream = hf.upstream.rstrip("/") or default_hf_upstream()
    session: aiohttp.ClientSession | None = None
    client = None
    if upstream and not hf.offline:
        guard = EgressGuard.build("hf", "hub", [upstream], settings.egress.allow)
        session = guarded_session(guard, app[METRICS].traces("hf") if METRICS in app else None)
        metrics = app.get(METRICS)
        breaker = CircuitBreaker(
            "hub", hf.limits, app[CLOCK], metrics.circuit if metrics is not None else None
        )
        client = HubClient(session, upstream, hf.timeout, hf.limits, breaker)
    elif not upstream:
        log.warning(
            "hf_no_upstream",
            hint="/hf answers 503 for anything not stored: set hf.upstream, or install "
            "huggingface_hub (a dependency of airlock) for its default endpoint",
        )
    clock = app[CLOCK]
    source = HubSource(
        client, tables, ttl=hf.ttl, offline=hf.offline, clock=lambda: clock.now_ns() / 1e9
    )
    engine = app[ENGINE]
    policy = HfPolicy(engine, IdentityStore(tables), monitor=settings.policy.mode == "monitor")
    data = PolicyData(settings.policy.path, engine)
    app[routes.SERVICE] = HfService(source, policy, data, SeenCommits(tables))
    files = HfFiles(source, tables, app[BLOBS], app[FILLER])
    gate = await _scan_gate(app)
    files.on_verified = lambda digest, path, ctx: gate.check_new(digest, path, ctx.meta.path)
    app[routes.SERVICE].scan_facts = _scan_facts(files, gate, app[BLOBS])
    app[routes.FILES] = files
    app[routes.AUTH] = (hf.token, hf.forward_client_token)
    app[routes.PUBLIC_URL] = settings.server.public_url
    log.info("hf_started", upstream=upstream or None, offline=hf.offline or client is None)
    try:
        yield
    finally:
        await gate.close()
        await source.close()  # background revalidations first: they use the session
        if session is not None:
            await session.close()
