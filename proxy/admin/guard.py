"""The login throttle (``throttle.py``) in front of the admin API's token checks.

The admin API and ``/metrics`` check tokens in two places (the identity middleware refuses an
unknown token with 401, ``require_admin`` a known one without the admin scope with 403), so
this middleware sits in front of both: a request carrying an ``Authorization`` header from a
locked source or client is answered ``429`` with ``Retry-After`` before any token check; one
whose check fails counts against its source and client.  Requests without credentials are
not attempts and pass untouched; so does everything outside the admin API and ``/metrics``.
The page's login form (``page.py``) uses the same throttle directly.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import IDENTITY
from ..identity import token_of
from ..logging import Handler
from .auth import is_admin, json_error
from .clients import reload_while_no_admin
from .throttle import Lock, LoginThrottle, source_key

LOGIN_THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("admin_login_throttle")
REFUSED = (401, 403)  # the statuses of a failed credential check


def guarded(path: str) -> bool:
    return path == "/metrics" or path.startswith("/admin/api/")


def too_many(lock: Lock) -> web.HTTPError:
    return json_error(
        web.HTTPTooManyRequests, lock.message(), {"Retry-After": lock.retry_after_header}
    )


@web.middleware
async def login_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    throttle = request.app.get(LOGIN_THROTTLE)
    header = request.headers.get("Authorization", "")
    if throttle is None or not header or not guarded(request.path):
        return await handler(request)
    source = source_key(request.remote)
    token = token_of(header)
    if token:
        await reload_while_no_admin(request.app)
    client = request.app[IDENTITY].resolve(token) if token else None
    account = client.id if client is not None else None
    lock = throttle.refused(source, account, "api")
    if lock is not None:
        raise too_many(lock)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if status in REFUSED:
            reason = (
                "unusable Authorization header"
                if token is None
                else "unknown token"
                if client is None
                else "lacks the admin scope"
            )
            throttle.failed(source, account, "api", reason)
        elif client is not None and is_admin(client) and status < 400:
            throttle.succeeded(client.id)
