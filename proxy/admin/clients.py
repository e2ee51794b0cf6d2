"""Clients managed through the admin API, besides those in the config file.

    GET    /admin/api/clients          every client (config and API), never a token
    POST   /admin/api/clients          {"id", "groups": [...], "scopes": [...]} -> 201 with the
                                       new token, shown this once (only its sha256 is kept)
    DELETE /admin/api/clients/{id}     removes an API-made client (config ones stay: 409)

API-made clients live in the metadata database and are loaded into the identity registry at
start, so they survive restarts; the identity middleware sees additions and removals at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from typing import Any

from aiohttp import web

from mirror_store.metadata import SqliteMetadata

from ..appkeys import IDENTITY, SETTINGS
from ..decision import Client
from ..identity import IdentityRegistry
from .auth import json_error, require_admin

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, groups TEXT NOT NULL,
    scopes TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL);
"""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SCOPES = ("admin",)


class ClientStore:
    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA)

    async def all(self) -> list[dict[str, Any]]:
        def q(c: sqlite3.Connection) -> list[dict[str, Any]]:
            return [
                {
                    "id": r[0],
                    "token_sha256": r[1],
                    "groups": json.loads(r[2]),
                    "scopes": json.loads(r[3]),
                    "created_at": r[4],
                    "created_by": r[5],
                }
                for r in c.execute(
                    "SELECT id, token_sha256, groups, scopes, created_at,"
                    " created_by FROM clients ORDER BY id"
                )
            ]

        return await self._meta.run(q)

    async def add(self, client: Client, token_sha256: str, by: str) -> None:
        row = (
            client.id,
            token_sha256,
            json.dumps(list(client.groups)),
            json.dumps(list(client.scopes)),
            time.time(),
            by,
        )
        await self._meta.run(lambda c: c.execute("INSERT INTO clients VALUES (?,?,?,?,?,?)", row))

    async def remove(self, client_id: str) -> bool:
        def q(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM clients WHERE id=?", (client_id,)).rowcount > 0

        return await self._meta.run(q)


CLIENTS: web.AppKey[ClientStore] = web.AppKey("admin_clients")


async def load_clients(app: web.Application) -> None:
    """Put the API-made clients into the identity registry (at start)."""
    store = app[CLIENTS]
    registry: IdentityRegistry = app[IDENTITY]
    for c in await store.all():
        registry.add(
            Client(id=c["id"], groups=tuple(c["groups"]), scopes=tuple(c["scopes"])),
            c["token_sha256"],
        )


async def reload_while_no_admin(app: web.Application) -> None:
    """Re-read API-made clients while no admin exists: the first admin is made by ``airlock
    admin create-token`` while the proxy runs, and its first login must work without a restart.
    Once an admin exists this does nothing (later clients come through the API)."""
    if CLIENTS in app and not app[IDENTITY].has_admin():
        await load_clients(app)


def _names(value: object, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.fullmatch(v) for v in value
    ):
        raise ValueError(f"{what} must be a list of names (letters, digits, . _ -)")
    return tuple(dict.fromkeys(value))


async def list_clients(request: web.Request) -> web.Response:
    require_admin(request)
    config = [
        {"id": c.id, "groups": list(c.groups), "scopes": list(c.scopes), "source": "config"}
        for c in request.app[SETTINGS].access.clients
    ]
    made = [
        {
            "id": c["id"],
            "groups": c["groups"],
            "scopes": c["scopes"],
            "source": "api",
            "created_at": c["created_at"],
            "created_by": c["created_by"],
        }
        for c in await request.app[CLIENTS].all()
    ]
    return web.json_response({"clients": config + made})


async def create_client(request: web.Request) -> web.Response:
    admin = require_admin(request)
    if request.content_type != "application/json":
        raise json_error(web.HTTPUnsupportedMediaType, "send Content-Type: application/json")
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        client_id = body.get("id")
        if not isinstance(client_id, str) or not _ID.fullmatch(client_id):
            raise ValueError("id: 1-64 letters, digits, '.', '_' or '-'")
        groups = _names(body.get("groups"), _GROUP, "groups")
        scopes = _names(body.get("scopes"), _GROUP, "scopes")
        if set(scopes) - set(SCOPES):
            raise ValueError(f"scopes: only {list(SCOPES)} are known")
    except json.JSONDecodeError:
        raise json_error(web.HTTPBadRequest, "the body is not valid JSON") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    known = {c.id for c in request.app[SETTINGS].access.clients} | {
        c["id"] for c in await request.app[CLIENTS].all()
    }
    if client_id in known:
        raise json_error(web.HTTPConflict, f"a client {client_id!r} exists already")
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    client = Client(id=client_id, groups=groups, scopes=scopes)
    await request.app[CLIENTS].add(client, digest, admin.id)
    request.app[IDENTITY].add(client, digest)
    return web.json_response(
        {
            "id": client_id,
            "groups": list(groups),
            "scopes": list(scopes),
            "token": token,
            "note": "the token is shown only now; airlock keeps its sha256",
        },
        status=201,
    )


async def delete_client(request: web.Request) -> web.Response:
    require_admin(request)
    client_id = request.match_info["id"]
    if any(c.id == client_id for c in request.app[SETTINGS].access.clients):
        raise json_error(web.HTTPConflict, f"{client_id!r} is defined in the config file")
    if not await request.app[CLIENTS].remove(client_id):
        raise json_error(web.HTTPNotFound, f"no API-made client {client_id!r}")
    request.app[IDENTITY].remove(client_id)
    return web.Response(status=204)


def setup_clients(app: web.Application) -> None:
    app.router.add_get("/admin/api/clients", list_clients)
    app.router.add_post("/admin/api/clients", create_client)
    app.router.add_delete("/admin/api/clients/{id}", delete_client)
