"""The admin page: server-rendered HTML, plain forms, post/redirect/get.

    GET  /admin/                      quarantine with approve/deny forms; recent decisions
                                      (filters: ?client=&rule=&outcome=)
    GET  /admin/login, POST /admin/login    token form -> session cookie
    POST /admin/logout
    POST /admin/quarantine/{sha256}   form fields verdict, reason, csrf -> 303 back to /admin/

A browser cannot attach a bearer token to a plain form, so the page uses its own session
(``sessions.py``): the login form takes an admin token, checks it against the configured clients
and sets an HttpOnly, SameSite=Strict cookie.  CSRF: every form carries the session's random
token, compared in constant time (SameSite=Strict is the second line); the login form, which has
no session yet, is refused when the browser says it comes from another origin.  Responses carry
a CSP without scripts, no framing, no caching.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ..appkeys import RECORDS
from ..identity import IdentityRegistry
from ..trust.records import TrustRecords
from . import templates
from .api import collect_stats, is_quarantined, parse_approval, parse_digest, parse_filters
from .auth import is_admin
from .clients import reload_while_no_admin
from .guard import LOGIN_THROTTLE
from .sessions import COOKIE, Session, SessionStore
from .throttle import source_key

SESSIONS: web.AppKey[SessionStore] = web.AppKey("admin_sessions")
IDENTITIES: web.AppKey[IdentityRegistry] = web.AppKey("admin_identities")
DECISIONS_SHOWN = 100
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/html", headers={**HEADERS, **(headers or {})}
    )


def _see(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location, headers={"Cache-Control": "no-store"})


def _session(request: web.Request) -> Session:
    session = request.app[SESSIONS].of(request)
    if session is None:
        raise _see("/admin/login")
    return session


def _records(request: web.Request) -> TrustRecords:
    records = request.app.get(RECORDS)
    if records is None:
        raise web.HTTPServiceUnavailable(text="the proxy is not started yet\n")
    return records


def _foreign_origin(request: web.Request) -> bool:
    """True when the browser says the request comes from another origin."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return False  # a browser always sends Origin on a cross-origin POST; curl may not
    return urlsplit(origin).netloc.lower() != request.host.lower()


async def _form(request: web.Request, session: Session) -> dict[str, str]:
    """The posted form fields, after the CSRF check."""
    data = await request.post()
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    if not session.csrf_ok(fields.get("csrf", "")):
        raise web.HTTPForbidden(
            text=templates.layout("airlock admin", "<p>The form expired; reload the page.</p>"),
            content_type="text/html",
            headers=HEADERS,
        )
    return fields


async def page(request: web.Request) -> web.Response:
    session = _session(request)
    try:
        filters = parse_filters(request.query)
    except ValueError as e:
        session.flash.append(str(e))
        filters = {"client": None, "rule": None, "outcome": None}
    records = _records(request)
    body = templates.admin_page(
        client_id=session.client.id,
        csrf=session.csrf,
        flash=session.take_flash(),
        stats=await collect_stats(request.app),
        quarantine=await records.quarantined(),
        decisions=await records.decisions(limit=DECISIONS_SHOWN, **filters),
        filters=filters,
    )
    return _html(body)


def _no_admin(request: web.Request) -> bool:
    return not request.app[IDENTITIES].has_admin()


async def login_form(request: web.Request) -> web.Response:
    if request.app[SESSIONS].of(request) is not None:
        raise _see("/admin/")
    return _html(templates.login_page(no_admin=_no_admin(request)))


async def login(request: web.Request) -> web.StreamResponse:
    if _foreign_origin(request):
        return _html(templates.login_page("Cross-origin login refused."), 403)
    data = await request.post()
    token = data.get("token")
    await reload_while_no_admin(request.app)
    client = (
        request.app[IDENTITIES].resolve(token.strip())
        if isinstance(token, str) and token.strip()
        else None
    )
    # Throttled before the token counts, so a correct token is refused while locked too.
    throttle, source = request.app[LOGIN_THROTTLE], source_key(request.remote)
    lock = throttle.refused(source, client.id if client else None, "page")
    if lock is not None:
        page = templates.login_page(lock.message(), no_admin=_no_admin(request))
        return _html(page, 429, {"Retry-After": lock.retry_after_header})
    if client is None:
        throttle.failed(source, None, "page", "unknown token")
        return _html(templates.login_page("Unknown token.", no_admin=_no_admin(request)), 401)
    if not is_admin(client):
        throttle.failed(source, client.id, "page", "lacks the admin scope")
        return _html(templates.login_page(f"{client.id} lacks the admin scope."), 403)
    throttle.succeeded(client.id)
    sessions = request.app[SESSIONS]
    sid, _ = sessions.create(client)
    resp = _see("/admin/")
    sessions.set_cookie(request, resp, sid)
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    sessions = request.app[SESSIONS]
    session = sessions.of(request)
    if session is not None:
        await _form(request, session)
        sessions.drop(request.cookies.get(COOKIE))
    resp = _see("/admin/login")
    sessions.clear_cookie(resp)
    raise resp


async def decide(request: web.Request) -> web.StreamResponse:
    session = _session(request)
    fields = await _form(request, session)
    try:
        digest = parse_digest(request.match_info["sha256"])
        verdict, reason = parse_approval(fields.get("verdict"), fields.get("reason"))
    except ValueError as e:
        session.flash.append(f"Not recorded: {e}")
        raise _see("/admin/#quarantine") from None
    records = _records(request)
    if not await is_quarantined(records, digest):
        session.flash.append(f"Not recorded: {digest} is not in quarantine.")
    else:
        a = await records.set_approval(digest, verdict, reason, session.client.id)
        word = "Approved" if a.verdict == "approve" else "Denied"
        session.flash.append(f"{word} {digest[:12]}…: {a.reason}")
    raise _see("/admin/#quarantine")


async def to_page(request: web.Request) -> web.StreamResponse:
    raise _see("/admin/")


def setup_page(app: web.Application) -> None:
    app.router.add_get("/admin", to_page)
    app.router.add_get("/admin/", page)
    app.router.add_get("/admin/login", login_form)
    app.router.add_post("/admin/login", login)
    app.router.add_post("/admin/logout", logout)
    app.router.add_post("/admin/quarantine/{sha256}", decide)
