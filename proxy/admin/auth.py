"""Who may use the admin API: a client (from the identity middleware) with the "admin" scope.

``require_admin(request)`` is the one check every admin handler makes: 401 with a Bearer
challenge when the request carries no known credentials, 403 when the client is known but lacks
the scope.  Errors are JSON, like the rest of the admin API.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..decision import Client
from ..identity import CLIENT_KEY

ADMIN_SCOPE = "admin"


def json_error(
    exc: type[web.HTTPError], message: str, headers: dict[str, str] | None = None
) -> web.HTTPError:
    """An HTTP error whose body is ``{"error": message}``."""
    return exc(
        text=json.dumps({"error": message}),
        content_type="application/json",
        headers=headers,
    )


def is_admin(client: Client | None) -> bool:
    return client is not None and not client.anonymous and ADMIN_SCOPE in client.scopes


def request_client(request: web.Request) -> Client | None:
    client = request.get(CLIENT_KEY)
    return client if isinstance(client, Client) else None


def require_admin(request: web.Request) -> Client:
    """The admin client making *request*.

    Raises:
        HTTPUnauthorized: no credentials, or none the identity middleware knows.
        HTTPForbidden: a known client without the "admin" scope.
    """
    client = request_client(request)
    if client is None or client.anonymous:
        raise json_error(
            web.HTTPUnauthorized,
            "the admin API needs an admin token (Authorization: Bearer <token>)",
            {"WWW-Authenticate": 'Bearer realm="airlock"'},
        )
    if ADMIN_SCOPE not in client.scopes:
        raise json_error(web.HTTPForbidden, f"client {client.id!r} lacks the admin scope")
    return client
