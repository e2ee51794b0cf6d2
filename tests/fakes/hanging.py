"""A hanging upstream: a server on 127.0.0.1, port 0, that accepts connections and never
answers (the request is read and dropped; no byte is ever sent back).

async with hanging_upstream() as hang:
    hang.url             # http://127.0.0.1:<port>
    hang.accepted        # connections accepted so far
    hang.open            # connections still open (the client has not given up on them)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class HangingUpstream:
    def __init__(self) -> None:
        self.url = ""
        self.accepted = 0
        self.open = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self._writers.add(writer)
        try:
            while await reader.read(65536):  # read and drop the request; never answer it
                pass
        except ConnectionError:
            pass
        finally:
            self.open -= 1  # the client gave up (or the server closes)
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@asynccontextmanager
async def hanging_upstream() -> AsyncIterator[HangingUpstream]:
    server = HangingUpstream()
    await server.start()
    try:
        yield server
    finally:
        await server.close()
