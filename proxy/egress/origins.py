"""Origins (scheme, host, port) and the ``[egress] allow`` entries that match them (pure).

An entry is either an origin, ``"http://127.0.0.1:8081"`` or ``"https://files.internal.example"``
(that scheme, host and port; the port defaults to the scheme's), or a host with an optional
port and no scheme, ``"files.internal.example"`` / ``"10.1.2.3:8443"`` (http or https on that
port, by default 80 for http and 443 for https).  Hosts compare exactly after normalisation
(lower case, no trailing dot, IPv6 compressed): a name never matches the address it resolves
to, and a host never matches with another port.  No paths, wildcards or address ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allowed destination; ``scheme`` None = http or https, ``port`` None = its default."""

    host: str
    scheme: str | None = None
    port: int | None = None

    def matches(self, origin: Origin) -> bool:
        if origin.host != self.host:
            return False
        if self.scheme is not None and origin.scheme != self.scheme:
            return False
        port = self.port if self.port is not None else DEFAULT_PORTS.get(origin.scheme)
        return origin.port == port


def normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ip_address(host).compressed
    except ValueError:
        return host


def origin_of(url: str) -> Origin:
    """The origin of an absolute http(s) URL.

    Raises:
        ValueError: not an http(s) URL with a host, or a bad port.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("expected an http(s) URL with a host")
    port = parts.port  # raises ValueError for a port out of range
    return Origin(scheme, normalize_host(parts.hostname), port or DEFAULT_PORTS[scheme])


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one ``[egress] allow`` entry.

    Raises:
        ValueError: with a sentence saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected an origin (http://host:port) or a host[:port]")
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in DEFAULT_PORTS:
            raise ValueError(f"{text!r}: the scheme must be http or https")
    else:
        parts = urlsplit("//" + text)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: no credentials here; give an origin or a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: give an origin (scheme://host[:port]) or a host, no path")
    if not parts.hostname or "*" in parts.hostname:
        raise ValueError(f"{text!r}: no host (wildcards are not supported)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r}: the port must be 1-65535") from None
    if port == 0:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    scheme = parts.scheme.lower() or None
    return AllowEntry(normalize_host(parts.hostname), scheme, port)


def upstream_entry(url: str) -> AllowEntry:
    """The exact origin of a configured upstream URL, as an allow entry."""
    o = origin_of(url)
    return AllowEntry(o.host, o.scheme, o.port)
