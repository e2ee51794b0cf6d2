"""Liveness and readiness: ``/healthz`` (the process answers) and ``/readyz`` (it can serve)."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from .appkeys import BLOBS, POLICY


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    problems = []
    manager = request.app.get(POLICY)
    blobs = request.app.get(BLOBS)
    if manager is None or blobs is None:
        problems.append("not started")
    elif not await asyncio.to_thread(os.access, blobs.root, os.W_OK):
        problems.append("store is not writable")
    body: dict[str, object] = {
        "status": "ready" if not problems else "not ready",
        "problems": problems,
    }
    if manager is not None:
        st = manager.status
        body["policy"] = {
            "revision": st.revision,
            "reloads": st.reloads,
            "last_reload_ok": st.last_reload_ok,
            "last_error": st.last_error,
        }
    return web.json_response(body, status=200 if not problems else 503)


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
