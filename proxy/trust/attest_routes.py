"""Wiring of the served log and attestations: ``setup_attestations(app)``, and their routes.

    GET /attestations/key            the public key, PEM (X-Airlock-Keyid: sha256 of its DER);
                                     JSON {keyid, algorithm, pem} with Accept: application/json
    GET /attestations/{sha256}       the newest DSSE envelope approving that digest
                                     (?name=FILE: the newest for that subject name)

Both are readable by any client the proxy admits (the identity middleware applies; no admin
scope).  Call ``setup_attestations`` in ``create_app`` after the other setups: its cleanup_ctx
runs after theirs (it reads the metadata store and the trust records), loads or creates the
signing key, and stops first (flushing queued rows before the store closes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from mirror_store.digest import is_digest

from ..appkeys import ATTESTOR, ENGINE, META, RECORDS, SERVED_LOG, SETTINGS
from ..logging import add_decision_sink
from .attest import AttestationStore, Attestor
from .attest_served import ServedRecorder, capture_sink
from .keys import load_or_create
from .records import TrustRecords

log = structlog.get_logger("airlock.trust")
PEM_TYPE = "application/x-pem-file"
MAX_NAME = 1000


def _error(exc: type[web.HTTPError], message: str) -> web.HTTPError:
    return exc(text=json.dumps({"error": message}), content_type="application/json")


def _attestor(request: web.Request) -> Attestor:
    attestor = request.app.get(ATTESTOR)
    if attestor is None:
        raise _error(web.HTTPServiceUnavailable, "the proxy is not started yet")
    return attestor


async def public_key(request: web.Request) -> web.Response:
    key = _attestor(request).key
    pem = key.public_pem().decode("ascii")
    headers = {"X-Airlock-Keyid": key.keyid, "Cache-Control": "no-cache"}
    if "application/json" in request.headers.get("Accept", ""):
        body = {"keyid": key.keyid, "algorithm": "ed25519", "pem": pem}
        return web.json_response(body, headers=headers)
    return web.Response(text=pem, content_type=PEM_TYPE, headers=headers)


async def envelope(request: web.Request) -> web.Response:
    attestor = _attestor(request)
    digest = request.match_info["sha256"].strip().lower()
    if not is_digest(digest):
        raise _error(web.HTTPBadRequest, "expected a sha256 digest: 64 hex characters")
    name = request.query.get("name") or None
    if name is not None and len(name) > MAX_NAME:
        raise _error(web.HTTPBadRequest, f"name must be at most {MAX_NAME} characters")
    found = await attestor.store.latest(digest, name)
    if found is None:
        named = f" under the name {name!r}" if name else ""
        raise _error(
            web.HTTPNotFound,
            f"no attestation for sha256 {digest}{named}: this proxy has not approved and "
            "served that content",
        )
    return web.json_response(found, headers={"X-Airlock-Keyid": attestor.key.keyid})


def setup_attestations(app: web.Application) -> None:
    app.router.add_get("/attestations/key", public_key)
    app.router.add_get("/attestations/{sha256}", envelope)
    # Hub decisions reach the served log through the decision sinks (see attest_served).
    add_decision_sink(app, capture_sink(lambda: app[ENGINE].revision if ENGINE in app else ""))
    app.cleanup_ctx.append(_trust_lifecycle)


async def _trust_lifecycle(app: web.Application) -> AsyncIterator[None]:
    if RECORDS not in app:
        app[RECORDS] = await asyncio.to_thread(TrustRecords, app[META])  # schema: sync sqlite
    key = await asyncio.to_thread(load_or_create, app[SETTINGS].store.path)
    store = await asyncio.to_thread(AttestationStore, app[META])
    attestor = Attestor(key, store)
    recorder = ServedRecorder(app[RECORDS], attestor)
    app[ATTESTOR] = attestor
    app[SERVED_LOG] = recorder
    log.info("attestation_key", keyid=key.keyid, path=str(key.path))
    try:
        yield
    finally:
        await recorder.close()
