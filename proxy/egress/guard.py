"""The egress rules of one upstream session, and the record of every refusal.

``EgressGuard`` knows which origins are allowed whatever they resolve to (the configured
upstreams, ``[egress] allow``) and who is asking (ecosystem, upstream name).  ``refuse`` logs the
refusal as one ``decision`` event (rule ``egress``; the destination and full URL go to the server
log only) and returns the transport error the upstream clients translate into ``EgressDenied``:
a 502 whose text names the upstream and the reason, never the URL or address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ..decision import Decision, Ecosystem, Reason, Subject
from ..errors import UpstreamInvalid
from ..logging import log_decision
from .origins import AllowEntry, Origin, parse_allow_entry, upstream_entry

RULE = "egress"
HINT = "not a configured upstream or an [egress] allow entry"


class EgressRefused(aiohttp.ClientConnectionError):
    """A connection the guard refused (a transport error: code that catches ClientError fails
    closed).  ``reason`` is safe to show to clients; the destination went to the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EgressDenied(UpstreamInvalid):
    """The domain error (502) for a refused connection."""

    title = "Refused by airlock egress guard"


def redact(url: str) -> str:
    """*url* without its password, for the server log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class EgressGuard:
    ecosystem: Ecosystem
    upstream: str  # the configured name of the session's upstream
    allowed: tuple[AllowEntry, ...]

    @classmethod
    def build(
        cls, ecosystem: Ecosystem, upstream: str, upstream_urls: Iterable[str], allow: Iterable[str]
    ) -> EgressGuard:
        """Rules for one session: its ecosystem's upstream origins plus the admin's list.

        Raises:
            ValueError: an entry that does not parse (settings validated them already).
        """
        entries = [upstream_entry(u) for u in upstream_urls if u]
        entries += [parse_allow_entry(a) for a in allow]
        return cls(ecosystem, upstream, tuple(dict.fromkeys(entries)))

    def listed(self, origin: Origin) -> bool:
        return any(e.matches(origin) for e in self.allowed)

    def refuse(self, reason: str, url: str, address: str = "") -> EgressRefused:
        """Log one decision event for a refused connection; return the error to raise."""
        parts = urlsplit(url)
        destination = f"{parts.hostname}:{parts.port or ''}".rstrip(":")
        subject = Subject(self.ecosystem, "egress", destination, self.upstream)
        decision = Decision(allow=False, reasons=(Reason(RULE, reason),))
        log_decision(subject, decision, outcome="deny", url=redact(url), address=address)
        return EgressRefused(reason)

    def denied(self, e: EgressRefused) -> EgressDenied:
        return EgressDenied(f"upstream {self.upstream}: {e.reason}")
