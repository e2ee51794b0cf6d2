"""Hub-style errors for ``/hf`` routes: X-Error-Code, X-Error-Message and a JSON ``error``.

Clients build their exception text from these (docs/hf-hub-protocol.md §6): a policy block is a
403 with ``X-Error-Code: GatedRepo`` — the only answer whose reason reaches the top-level message
in both huggingface_hub and transformers — and never carries ``X-Repo-Commit`` (the client
would write a negative-cache entry).  Other routes keep the core's plain-text errors.

Hub-specific additions to the core error tree::

    NotFound
    └── HubNotFound      404  with the hub's code: RepoNotFound | RevisionNotFound | EntryNotFound
    HubRefused           401/403  the upstream refused (gated, private, bad token), code kept
    UpstreamUnavailable
    └── HubUnconfigured  503  no upstream hub configured, and not stored

An upstream that fails is never a "not found": 502/503/504 with ``X-Error-Code``
``UpstreamUnavailable`` (or ``UpstreamInvalid``, ``UpstreamNotConfigured``) and a message
naming what to fix; the hub clients print it (unknown codes fall through to their generic
HTTP error with the server's message).
"""

from __future__ import annotations

import json

from aiohttp import web

from ..errors import AirlockError, Denied, NotFound, UpstreamInvalid, UpstreamUnavailable
from .paths import PREFIX
from .wire import header_safe

REPO_NOT_FOUND = "RepoNotFound"
REVISION_NOT_FOUND = "RevisionNotFound"
ENTRY_NOT_FOUND = "EntryNotFound"
GATED = "GatedRepo"
CODES = (REPO_NOT_FOUND, REVISION_NOT_FOUND, ENTRY_NOT_FOUND, GATED)
UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
UPSTREAM_INVALID = "UpstreamInvalid"
UPSTREAM_NOT_CONFIGURED = "UpstreamNotConfigured"


class HubNotFound(NotFound):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class HubRefused(AirlockError):
    """The upstream hub refused access (gated or private repo, invalid token, Xet)."""

    title = "Refused by the hub"

    def __init__(self, message: str, status: int = 403, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HubUnconfigured(UpstreamUnavailable):
    """No upstream hub is configured (and the answer is not stored): the admin must set one."""

    status, title = 503, "No upstream hub"
    code = UPSTREAM_NOT_CONFIGURED


def _code_for(request: web.Request, err: AirlockError) -> str | None:
    if isinstance(err, Denied):
        return GATED
    code = getattr(err, "code", None)
    if isinstance(code, str):
        return code
    if isinstance(err, UpstreamUnavailable):
        return UPSTREAM_UNAVAILABLE
    if isinstance(err, UpstreamInvalid):
        return UPSTREAM_INVALID
    if isinstance(err, NotFound):
        return ENTRY_NOT_FOUND if "/resolve/" in request.rel_url.raw_path else REPO_NOT_FOUND
    return None


def _message(err: AirlockError) -> str:
    if isinstance(err, Denied):
        return f"Blocked by policy: {err.message}"
    return err.message


def hub_error_response(request: web.Request, err: AirlockError) -> web.Response:
    message = header_safe(_message(err))
    headers = {"X-Error-Message": message}
    code = _code_for(request, err)
    if code:
        headers["X-Error-Code"] = code
    if isinstance(err, Denied) and err.decision.revision:
        headers["X-Airlock-Policy-Revision"] = err.decision.revision[:12]
    body = json.dumps({"error": message}).encode()
    return web.Response(
        status=err.status,
        body=body,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def hub_error_hook(request: web.Request, err: AirlockError) -> web.StreamResponse | None:
    """ERROR_HOOK: hub rendering for ``/hf/…`` only; None keeps the plain form elsewhere."""
    path = request.rel_url.raw_path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    return hub_error_response(request, err)
