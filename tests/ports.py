"""Ports for tests: every server binds port 0 and reports the port it got (no pick-then-bind).

``refusing_port()`` is the one address that must not answer: a TCP socket bound to 127.0.0.1
port 0 and never put into listen state.  While the test holds it, the kernel refuses every
connection to that port (RST, "connection refused") at once, and nothing else can bind the port
(the socket does not set SO_REUSEADDR), unlike a fixed "unused" port such as 9 or a port that was
bound and closed again.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for as long as the context lasts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])
