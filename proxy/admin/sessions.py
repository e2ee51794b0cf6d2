"""Browser sessions for the admin page: an HttpOnly, SameSite=Strict cookie naming a session
kept in memory (a restart logs everyone out), and a per-session CSRF token for its forms.

The cookie carries a random session id, never the admin token; the store keys sessions by the
id's sha256, so the table itself holds nothing a browser could present.  Sessions expire
``SESSION_TTL`` seconds after login, and the store keeps at most ``MAX_SESSIONS`` (the oldest
go first), so a login loop cannot grow memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..decision import Client

COOKIE = "airlock_admin"
COOKIE_PATH = "/admin"
SESSION_TTL = 8 * 3600.0
MAX_SESSIONS = 1000


@dataclass(slots=True)
class Session:
    client: Client
    csrf: str  # hidden field of every form this session may post
    expires: float
    flash: list[str] = field(default_factory=list)  # one-shot messages after a redirect

    def csrf_ok(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), presented.encode())

    def take_flash(self) -> list[str]:
        out, self.flash = self.flash, []
        return out


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        ttl: float = SESSION_TTL,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, client: Client) -> tuple[str, Session]:
        """A new session for *client*: (the cookie value, the session)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(client, secrets.token_urlsafe(32), self._clock() + self._ttl)
        self._sessions[_key(session_id)] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is not None and session.expires <= self._clock():
            del self._sessions[key]
            return None
        return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_key(session_id), None)

    # ---- cookies ------------------------------------------------------------------------------
    def of(self, request: web.Request) -> Session | None:
        return self.get(request.cookies.get(COOKIE))

    def set_cookie(self, request: web.Request, response: web.StreamResponse, sid: str) -> None:
        response.set_cookie(
            COOKIE,
            sid,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            max_age=int(self._ttl),
        )

    @staticmethod
    def clear_cookie(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path=COOKIE_PATH)
