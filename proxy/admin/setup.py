"""Wiring of the admin API, the admin page and ``/metrics``: ``setup_admin(app)``.

Call it in ``create_app`` after the core lifecycle is added: the metrics object is created now
(so the core lifecycle can hand its upstream observer to the PyPI clients), the cleanup_ctx
added here runs after the core one (it reads the metadata store) and stops first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..appkeys import IDENTITY, META, RECORDS, SETTINGS
from ..logging import add_decision_sink
from ..metrics_collectors import setup_metrics
from ..metrics_collectors import upstream_observer as observer
from ..trust.records import TrustRecords
from .api import setup_api
from .clients import CLIENTS, ClientStore, load_clients, setup_clients
from .guard import LOGIN_THROTTLE
from .page import IDENTITIES, SESSIONS, setup_page
from .recorder import DecisionRecorder
from .sessions import SessionStore
from .throttle import LoginThrottle

RECORDER: web.AppKey[DecisionRecorder] = web.AppKey("decision_recorder")

__all__ = ["RECORDER", "observer", "setup_admin"]  # observer: the app's upstream timer


def setup_admin(app: web.Application) -> None:
    metrics = setup_metrics(app)
    recorder = DecisionRecorder(on_drop=metrics.decision_records_dropped.inc)
    app[RECORDER] = recorder
    add_decision_sink(app, recorder.sink)
    app[SESSIONS] = SessionStore()
    # Failed logins of the page and token checks of the admin API (guard.login_guard_middleware,
    # installed by create_app in front of the identity middleware) share one throttle.
    app[LOGIN_THROTTLE] = LoginThrottle.from_settings(app[SETTINGS].access)
    # The page's login form checks tokens against the same configured clients as the
    # identity middleware (which only reads Authorization headers).
    app[IDENTITIES] = app[IDENTITY]  # the same registry, API-made clients included
    setup_api(app)
    setup_clients(app)
    setup_page(app)
    app.cleanup_ctx.append(_admin_lifecycle)


async def _admin_lifecycle(app: web.Application) -> AsyncIterator[None]:
    if RECORDS not in app:  # the scanner wiring may have made it already
        app[RECORDS] = await asyncio.to_thread(TrustRecords, app[META])  # schema: sync sqlite
    app[CLIENTS] = await asyncio.to_thread(ClientStore, app[META])  # schema: sync sqlite
    await load_clients(app)
    recorder = app[RECORDER]
    recorder.start(app[RECORDS])
    try:
        yield
    finally:
        await recorder.stop()
