"""The admin JSON API under ``/admin/api/`` (every handler requires the admin scope).

    GET  decisions?client=&rule=&outcome=&limit=   recent decisions, newest first
    GET  quarantine                                 digests with findings, with any approval
    POST quarantine/{sha256}  {"verdict": "approve"|"deny", "reason": "..."}
    POST policy/reload                              reload the policy folder now; its status
    GET  stats                                      store, fills, policy, metadata row counts
    GET  bom?client=&since=&until=                  AI-BOM, CycloneDX 1.6 JSON (proxy.trust.bom)

Errors are JSON ``{"error": "..."}`` with a 4xx status; bad input never reaches a 500.  A POST
must say ``Content-Type: application/json``: a cross-site HTML form cannot send that without a
CORS preflight (which airlock never grants), so browser credentials cannot be replayed here.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sqlite3
from dataclasses import asdict
from typing import Any

from aiohttp import web

from ..appkeys import BLOBS, FILLER, META, METRICS, POLICY, RECORDS
from ..metrics_collectors import METER, fills_in_flight
from ..policy.manager import PolicyStatus
from ..trust.bom import MEDIA_TYPE, bom_json, parse_filter
from ..trust.records import Approval, TrustRecords, Verdict
from .auth import json_error, require_admin

DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
VERDICTS = ("approve", "deny")
MAX_REASON = 2000
MAX_FILTER = 200
STATS_MAX_AGE = 5.0  # seconds: the admin's view of the store is fresher than a scrape's


def parse_digest(raw: str) -> str:
    digest = raw.strip().lower()
    if not DIGEST_RE.match(digest):
        raise ValueError("expected a sha256 digest: 64 hex characters")
    return digest


def parse_approval(verdict: object, reason: object) -> tuple[str, str]:
    if verdict not in VERDICTS:
        raise ValueError('"verdict" must be "approve" or "deny"')
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError('"reason" must be a non-empty string')
    if len(reason) > MAX_REASON:
        raise ValueError(f'"reason" must be at most {MAX_REASON} characters')
    return str(verdict), reason.strip()


def parse_filters(query: Any) -> dict[str, str | None]:
    """client, rule, outcome from a query string; empty means "any"."""
    out: dict[str, str | None] = {}
    for name in ("client", "rule", "outcome"):
        value = str(query.get(name, "")).strip()
        if len(value) > MAX_FILTER:
            raise ValueError(f"{name!r} must be at most {MAX_FILTER} characters")
        out[name] = value or None
    return out


def parse_limit(raw: str) -> int:
    raw = raw.strip()
    limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else 0
    if not 1 <= limit <= 1000:
        raise ValueError('"limit" must be an integer from 1 to 1000')
    return limit


def _records(request: web.Request) -> TrustRecords:
    records = request.app.get(RECORDS)
    if records is None:
        raise json_error(web.HTTPServiceUnavailable, "the proxy is not started yet")
    return records


def verdict_json(v: Verdict, a: Approval | None) -> dict[str, Any]:
    return {
        "digest": v.digest,
        "scanner_version": v.scanner_version,
        "format": v.format,
        "findings": list(v.findings),
        "scanned_at": v.scanned_at,
        "approval": asdict(a) if a is not None else None,
    }


def status_json(st: PolicyStatus) -> dict[str, Any]:
    return asdict(st)


async def decisions(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        filters = parse_filters(request.query)
        limit = parse_limit(request.query.get("limit", "100"))
    except ValueError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    rows = await _records(request).decisions(limit=limit, **filters)
    return web.json_response({"decisions": rows})


async def quarantine(request: web.Request) -> web.Response:
    require_admin(request)
    items = await _records(request).quarantined()
    return web.json_response({"quarantine": [verdict_json(v, a) for v, a in items]})


async def approve(request: web.Request) -> web.Response:
    client = require_admin(request)
    if request.content_type != "application/json":
        raise json_error(web.HTTPUnsupportedMediaType, "send Content-Type: application/json")
    try:
        digest = parse_digest(request.match_info["sha256"])
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        verdict, reason = parse_approval(body.get("verdict"), body.get("reason"))
    except json.JSONDecodeError:
        raise json_error(web.HTTPBadRequest, "the body is not valid JSON") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    records = _records(request)
    if not await is_quarantined(records, digest):
        raise json_error(web.HTTPNotFound, f"{digest} is not in quarantine (no findings)")
    approval = await records.set_approval(digest, verdict, reason, client.id)
    return web.json_response({"approval": asdict(approval)})


async def is_quarantined(records: TrustRecords, digest: str) -> bool:
    return any(v.digest == digest for v, _ in await records.quarantined())


async def reload_policy(request: web.Request) -> web.Response:
    require_admin(request)
    manager = request.app.get(POLICY)
    if manager is None:
        raise json_error(web.HTTPServiceUnavailable, "the proxy is not started yet")
    st = await manager.reload()
    return web.json_response(status_json(st), status=200 if st.last_reload_ok else 422)


async def stats(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(await collect_stats(request.app))


async def collect_stats(app: web.Application) -> dict[str, Any]:
    """What the stats endpoint and the page header show; the store walk runs off the loop."""
    out: dict[str, Any] = {}
    blobs = app.get(BLOBS)
    if blobs is not None:
        usage = await asyncio.to_thread(app[METER].measure, blobs, STATS_MAX_AGE)
        out["store"] = {"blobs": usage.blobs, "bytes": usage.bytes}
    filler = app.get(FILLER)
    out["caches"] = {
        "fills_in_flight": fills_in_flight(app),
        "upstream_fetches": filler.upstream_fetches if filler is not None else 0,
    }
    manager = app.get(POLICY)
    out["policy"] = status_json(manager.status) if manager is not None else None
    metrics = app.get(METRICS)
    if metrics is not None:
        ratio = metrics.hit_ratio()
        out["store_hit_ratio"] = None if math.isnan(ratio) else round(ratio, 4)  # NaN: no data
    meta = app.get(META)
    out["metadata"] = await meta.run(_table_counts) if meta is not None else {}
    return out


def _table_counts(c: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    # Table names come from the database's own catalogue, quoted; nothing from a request.
    return {n: c.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}  # noqa: S608


async def bom(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        where = parse_filter(request.query)
    except ValueError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    text = await bom_json(_records(request), where)
    return web.Response(text=text, headers={"Content-Type": MEDIA_TYPE})


def setup_api(app: web.Application) -> None:
    app.router.add_get("/admin/api/decisions", decisions)
    app.router.add_get("/admin/api/quarantine", quarantine)
    app.router.add_post("/admin/api/quarantine/{sha256}", approve)
    app.router.add_post("/admin/api/policy/reload", reload_policy)
    app.router.add_get("/admin/api/stats", stats)
    app.router.add_get("/admin/api/bom", bom)
