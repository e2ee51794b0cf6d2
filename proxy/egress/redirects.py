"""Redirect chains the upstream clients follow themselves: capped, loop-free, http(s) only.

Each hop is a new request, so the connector checks its destination; this module refuses what
no connection check can see: too many hops, a loop, and a Location that is not http(s).  A
refusal is logged through the session's guard like any other egress refusal.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp

from .connector import GuardedConnector
from .guard import EgressGuard, EgressRefused

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def guard_of(session: aiohttp.ClientSession) -> EgressGuard | None:
    connector = session.connector
    return connector.guard if isinstance(connector, GuardedConnector) else None


class RedirectChain:
    """The hops of one request.  ``follow`` returns the next URL or raises EgressRefused."""

    def __init__(self, url: str, guard: EgressGuard | None, limit: int = MAX_REDIRECTS) -> None:
        self._guard = guard
        self._limit = limit
        self._seen = {url.split("#", 1)[0]}
        self.hops = 0

    def _refuse(self, why: str, url: str) -> EgressRefused:
        reason = f"refused to follow {why}"
        return EgressRefused(reason) if self._guard is None else self._guard.refuse(reason, url)

    def follow(self, current: str, location: str) -> str:
        target = urljoin(current, location).split("#", 1)[0]
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise self._refuse("a redirect to a non-HTTP URL", current)
        self.hops += 1
        if self.hops > self._limit:
            raise self._refuse(f"a redirect chain longer than {self._limit} hops", target)
        if target in self._seen:
            raise self._refuse("a redirect loop", target)
        self._seen.add(target)
        return target
