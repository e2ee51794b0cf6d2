"""The refusing port refuses, at once, and keeps its port from being taken."""

from __future__ import annotations

import socket

import pytest

from tests.ports import refusing_port


def test_a_connection_is_refused() -> None:
    with refusing_port() as port:
        for _ in range(3):  # every time, not only the first
            with pytest.raises(ConnectionRefusedError), socket.socket() as c:
                c.connect(("127.0.0.1", port))


def test_nobody_else_can_listen_on_it_meanwhile() -> None:
    with refusing_port() as port, socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio servers do
        with pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))
