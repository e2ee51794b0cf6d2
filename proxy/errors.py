"""Domain errors and the one middleware that maps them to HTTP.

Error tree::

    AirlockError
    ├── BadRequest            400  malformed name, file name or parameter
    ├── NotFound              404  upstream says it does not exist (or not listed)
    │   └── OfflineMiss       404  offline mode and not in the store (says so)
    ├── Denied                403  a policy decision blocks it (carries the Decision)
    ├── NotAcceptable         406  no format the client accepts
    ├── UpstreamInvalid       502  upstream answered with something unusable (or bad bytes)
    └── UpstreamUnavailable   502/504  upstream down, erroring or timing out

Every error response is plain text with the reason, and the reason also rides in the HTTP
reason phrase, because that is the part pip prints for a failed download.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from .decision import Decision

log = structlog.get_logger("airlock")


class AirlockError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(AirlockError):
    status, title = 400, "Bad request"


class NotFound(AirlockError):
    status, title = 404, "Not found"


class OfflineMiss(NotFound):
    title = "Not mirrored (offline mode)"


class NotAcceptable(AirlockError):
    status, title = 406, "Not acceptable"


class Denied(AirlockError):
    status, title = 403, "Blocked by airlock policy"

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


class UpstreamInvalid(AirlockError):
    status, title = 502, "Bad upstream response"


class UpstreamUnavailable(AirlockError):
    status, title = 502, "Upstream unavailable"

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        if timeout:
            self.status = 504


def reason_phrase(title: str, message: str) -> str:
    """An HTTP reason phrase: one line, printable ASCII, bounded."""
    text = f"{title}: {message}"
    text = re.sub(r"[^\x20-\x7e]", "?", text)
    return text[:400]


def error_response(err: AirlockError, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=err.status,
        reason=reason_phrase(err.title, err.message),
        text=f"{err.title}: {err.message}\n",
        headers=headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AirlockError as e:
        hook = request.app.get(ERROR_HOOK)
        if hook is not None:
            custom = hook(request, e)
            if custom is not None:
                return custom
        return error_response(e)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return web.Response(status=500, text="Internal error (logged with the request id)\n")


# An ecosystem may render errors its own way (the hub wants X-Error-Code headers); it sets
# this hook, which returns None to fall back to the plain response.
ERROR_HOOK: web.AppKey[Callable[[web.Request, AirlockError], web.StreamResponse | None]] = (
    web.AppKey("error_hook")
)
