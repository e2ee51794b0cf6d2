"""``airlock admin create-token [--id ID] [--groups G,...]``: the first admin, from the server.

The admin page and API need a client with the "admin" scope, and only an admin can make
clients through the API; this verb makes one directly in the store's database (the same table
the API writes, so the client is listed and can be deleted there).  The token goes to stdout,
alone on its line and shown only now (airlock keeps its sha256); what to do with it goes to
stderr, so ``TOKEN=$(airlock admin create-token)`` works.  A running proxy picks the client up
at its next admin login (while no admin exists it re-reads API-made clients on an unknown token:
``clients.reload_while_no_admin``); otherwise at its next start.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import secrets
import sys
from typing import Any

from mirror_store.metadata import SqliteMetadata

from ..decision import Client
from ..settings import Settings
from .clients import _ID, ClientStore

ADMIN_SCOPE = "admin"


async def _create(settings: Settings, client_id: str, groups: tuple[str, ...], by: str) -> str:
    meta = SqliteMetadata(settings.store.path / "metadata.sqlite3")
    try:
        store = await asyncio.to_thread(ClientStore, meta)
        known = {c.id for c in settings.access.clients} | {c["id"] for c in await store.all()}
        if client_id in known:
            raise ValueError(
                f"a client {client_id!r} exists already; choose another --id "
                "(or delete it: DELETE /admin/api/clients/{id})"
            )
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        client = Client(id=client_id, groups=groups, scopes=(ADMIN_SCOPE,))
        await store.add(client, digest, f"cli:{by}")
        return token
    finally:
        await meta.close()


def _create_token(args: argparse.Namespace, settings: Settings) -> int:
    if not _ID.fullmatch(args.id):
        print("airlock: --id: 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    groups = tuple(g for g in (args.groups or "").split(",") if g)
    if not all(_ID.fullmatch(g) for g in groups):
        print("airlock: --groups: names of letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    try:
        token = asyncio.run(_create(settings, args.id, groups, getpass.getuser()))
    except ValueError as e:
        print(f"airlock: {e}", file=sys.stderr)
        return 1
    base = settings.server.public_url.rstrip("/") or (
        f"http://{settings.server.host}:{settings.server.port}"
    )
    print(token)
    print(
        f"created admin client {args.id!r} in {settings.store.path}; the token above is shown "
        "only now (airlock keeps its sha256).\n"
        f"Log in at {base}/admin/login, or send it as 'Authorization: Bearer <token>' to "
        f"{base}/admin/api/. A running proxy accepts it at once.",
        file=sys.stderr,
    )
    return 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config_arg: Any
) -> None:
    admin = subparsers.add_parser(
        "admin",
        help="manage admin access",
        description="Manage access to the admin page and API.",
    )
    verbs = admin.add_subparsers(dest="admin_verb", required=True, metavar="VERB")
    create = verbs.add_parser(
        "create-token",
        help="create an admin client and print its token (the first admin)",
        description="Create a client with the admin scope in the store's database and print "
        "its token on stdout, once. Use it to log in to /admin/ or for the admin API.",
    )
    config_arg(create)
    create.add_argument("--id", default="admin", help="the client's id (default: admin)")
    create.add_argument("--groups", default="", help="comma-separated policy groups (optional)")
    create.set_defaults(func=_create_token)
