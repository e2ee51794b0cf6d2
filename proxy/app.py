"""Composition root: ``create_app(settings)`` builds every collaborator and wires the routes.

Nothing here runs at import time.  Sessions, the store, the policy engine and its watcher are
created in a ``cleanup_ctx`` when the server starts and closed when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from mirror_store.blobs import LocalBlobStore
from mirror_store.fill import Filler
from mirror_store.metadata import SqliteMetadata

from .admin.guard import login_guard_middleware
from .admin.setup import observer, setup_admin
from .appkeys import (
    BLOBS,
    CLOCK,
    ENGINE,
    FILLER,
    IDENTITY,
    META,
    POLICY,
    SETTINGS,
    START_SUMMARY,
)
from .clock import SYSTEM_CLOCK, Clock
from .errors import error_middleware
from .health import setup_health
from .hf.setup import setup_hf
from .identity import IdentityRegistry, identity_middleware
from .logging import request_context_middleware
from .metrics_collectors import circuit_observer
from .policy.factory import create_engine
from .policy.manager import PolicyManager
from .pypi import routes as pypi_routes
from .pypi.setup import build_pypi, pypi_upstreams
from .settings import Settings
from .trust.attest_routes import setup_attestations


def create_app(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> web.Application:
    """The proxy for *settings*; *clock* is the time policy decisions read (tests advance it)."""
    registry = IdentityRegistry(settings.access.clients)
    app = web.Application(
        middlewares=[
            request_context_middleware,
            login_guard_middleware,  # throttles admin token checks: sees the identity 401s
            identity_middleware(registry, settings.access),
            error_middleware,
        ],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[IDENTITY] = registry
    app.cleanup_ctx.append(_lifecycle)
    setup_hf(app)  # after _lifecycle: its cleanup_ctx reads the shared store and engine
    setup_admin(app)  # admin API/page, /metrics: metrics now, its cleanup_ctx after the core's
    setup_attestations(app)  # served log, signing key, /attestations: after the others' starts
    pypi_routes.setup_routes(app)
    setup_health(app)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    root = settings.store.path
    blobs = LocalBlobStore(root)
    blobs.clean_tmp()
    meta = SqliteMetadata(root / "metadata.sqlite3")
    filler = Filler(blobs, meta, await meta.taints())
    upstreams = pypi_upstreams(settings)
    kinds = {u.name: u.kind for u in upstreams}
    snapshot, engine = await create_engine(settings.policy, kinds, now_ns=app[CLOCK].now_ns)
    manager = PolicyManager(settings.policy.path, engine, settings.policy.reload_interval)
    pypi = await build_pypi(
        settings,
        meta,
        blobs,
        filler,
        engine,
        snapshot,
        manager,
        observer(app),
        app[CLOCK],
        circuit_observer(app),
    )
    app[BLOBS] = blobs
    app[META] = meta
    app[FILLER] = filler
    app[ENGINE] = engine
    app[POLICY] = manager
    app[pypi_routes.STORED_INDEX] = pypi.stored
    app[pypi_routes.POLICY_INDEX] = pypi.policy
    app[pypi_routes.FILES] = pypi.files
    manager.start()
    app[START_SUMMARY] = dict(  # logged as airlock_started once the socket listens (serve.py)
        store=str(root),
        policy_revision=engine.revision[:12],
        policy_engine=engine.name,
        upstreams=[f"{u.name}={u.url} ({u.kind})" for u in upstreams],
        offline=settings.pypi.offline,
        mode=settings.policy.mode,
    )
    try:
        yield
    finally:
        await manager.stop()
        await filler.aclose()
        await pypi.close()
        await engine.close()
        await meta.close()
