"""A hostile upstream: a real aiohttp server on port 0 in front of a stand-in index or hub.

    async with HostileUpstream(fake_index.url).running() as bad:
        bad.url                                   # point the proxy here instead of the fake
        bad.tamper(Tamper("tiny_lib-1.1", swap=evil_pickle(n)))   # first fetch only (times=1)
        bad.override("/simple/huge/", handler)    # answer this raw path itself

Every request is forwarded to the fake behind it (raw path, query, headers and body; redirects
passed back as they are), except that

* a GET whose raw path contains a `Tamper.match` gets a tampered body for its first `times`
  matching fetches (200 or 206): rewritten (`edit`: a listing with 200,000 entries or names
  with path tricks), swapped for another same-length body, one byte flipped, made
  longer or shorter, gzip-encoded although identity was asked for, cut mid-body, or stalled
  mid-body (a few bytes, then nothing until the server closes: slowloris);
* an overridden raw path is answered by its handler (gigantic pages, 200,000 files, gzip bombs,
  file names with path tricks).

`log` records what was answered and whether it was tampered, so a test can tell which fetch got
which body.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
_DROP_REQUEST = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Tamper:
    """What to do to the bodies of the first `times` GETs whose raw path contains `match`.

    Applied in this order: edit, swap, flip, truncate/extend, gzip, then delivery (cut or
    stall).  Offsets count from the start of the body actually sent (a 206 slice is a body too).
    """

    match: str
    times: int = 1
    edit: Callable[[bytes], bytes] | None = None  # rewrite the body (a listing, an info document)
    swap: bytes | None = None  # replace the body (same length unless extend/truncate say so)
    flip_at: int | None = None  # invert this one byte (negative: from the end)
    extend: bytes = b""  # appended: a longer body, Content-Length to match
    truncate: int = 0  # bytes dropped from the end: a shorter body, Content-Length to match
    gzip: bool = False  # Content-Encoding: gzip although the request asked for identity
    cut_at: int | None = None  # send this many bytes of a full Content-Length, then close
    stall_at: int | None = None  # send this many bytes, then nothing until the server closes
    done: int = 0

    def apply(self, body: bytes) -> bytes:
        if self.edit is not None:
            body = self.edit(body)
        if self.swap is not None:
            body = self.swap
        if self.flip_at is not None and body:
            i = self.flip_at % len(body)
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1 :]
        if self.truncate:
            body = body[: max(len(body) - self.truncate, 0)]
        body += self.extend
        if self.gzip:
            body = gzip.compress(body, mtime=0)
        return body


@dataclass
class Answered:
    method: str
    path: str  # raw path and query as received
    status: int
    tampered: bool = False
    range: str | None = None


@dataclass
class HostileUpstream:
    target: str  # the fake behind it, e.g. http://127.0.0.1:<port>
    url: str = ""
    log: list[Answered] = field(default_factory=list)
    rules: list[Tamper] = field(default_factory=list)
    overrides: dict[str, Handler] = field(default_factory=dict)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    # ---- test API ------------------------------------------------------------------------------
    def tamper(self, rule: Tamper) -> Tamper:
        self.rules.append(rule)
        return rule

    def override(self, raw_path: str, handler: Handler) -> None:
        self.overrides[raw_path] = handler

    def fetches(self, match: str) -> list[Answered]:
        """GETs with a body (200/206) whose path contains `match`, in order."""
        return [
            a for a in self.log if a.method == "GET" and match in a.path and a.status in (200, 206)
        ]

    # ---- serving -------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        handler = self.overrides.get(raw)
        if handler is not None:
            response = await handler(request)
            self.log.append(Answered(request.method, str(request.rel_url), response.status))
            return response
        return await self._forward(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST
        )
        data = await request.read() if request.can_read_body else None
        target = URL(self.target + str(request.rel_url.raw_path_qs), encoded=True)
        async with self._session.request(
            request.method,
            target,
            headers=headers,
            data=data,
            allow_redirects=False,
            auto_decompress=False,
        ) as upstream:
            body = await upstream.read()
            out = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP)
            if upstream.headers.get("Content-Encoding"):
                out["Content-Encoding"] = upstream.headers["Content-Encoding"]
            status = upstream.status
            length = upstream.headers.get("Content-Length")
        entry = Answered(
            request.method, str(request.rel_url), status, False, request.headers.get("Range")
        )
        self.log.append(entry)
        if request.method == "HEAD":
            if length is not None:
                out["Content-Length"] = length
            return web.Response(status=status, headers=out)
        rule = None
        if request.method == "GET" and status in (200, 206):
            rule = next(
                (r for r in self.rules if r.match in request.rel_url.raw_path and r.done < r.times),
                None,
            )
        if rule is None:
            return web.Response(status=status, headers=out, body=body)
        rule.done += 1
        entry.tampered = True
        body = rule.apply(body)
        if rule.gzip:
            out["Content-Encoding"] = "gzip"
        if "Content-Range" in out and status == 206 and (rule.extend or rule.truncate):
            start = int(out["Content-Range"].split()[1].split("-")[0])
            total = out["Content-Range"].rsplit("/", 1)[1]
            out["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{total}"
        response = web.StreamResponse(status=status, headers=out)
        response.content_length = len(body)
        stop = rule.cut_at if rule.cut_at is not None else rule.stall_at
        try:
            await response.prepare(request)
            if stop is None:
                await response.write(body)
                await response.write_eof()
                return response
            await response.write(body[:stop])
            if rule.stall_at is not None:
                await self.released.wait()  # slowloris: nothing more until the test ends
        except ConnectionError:
            return response  # the proxy gave up on us: fine
        if request.transport is not None:
            request.transport.close()  # EOF before Content-Length
        return response

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[HostileUpstream]:
        await self.start()
        try:
            yield self
        finally:
            await self.close()


# ---- bodies ---------------------------------------------------------------------------------


def evil_pickle(length: int, command: str = "touch /tmp/airlock-hostile-pwned") -> bytes:
    """A pickle whose loading would run `command` (os.system via GLOBAL + REDUCE), padded with
    NULs after STOP to exactly `length` bytes.  Built from opcodes; never load it."""
    text = command.encode()
    assert len(text) < 256
    body = (
        b"\x80\x04"  # PROTO 4
        + b"cos\nsystem\n"  # GLOBAL os.system
        + b"\x8c"  # SHORT_BINUNICODE
        + bytes([len(text)])
        + text
        + b"\x85"  # TUPLE1
        + b"R"  # REDUCE: call os.system(command)
        + b"."  # STOP
    )
    assert len(body) <= length, "the file to swap is shorter than the payload"
    return body + b"\x00" * (length - len(body))


async def stream_response(
    request: web.Request,
    chunks: Iterable[bytes],
    *,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """A chunked 200 built from `chunks` (never held whole); stops quietly if the reader left."""
    response = web.StreamResponse(headers={"Content-Type": content_type, **(headers or {})})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the proxy stopped reading (a limit): that is the point
    return response


def gzip_bomb(expanded: int, unit: bytes = b" " * 65536) -> bytes:
    """gzip data that expands to `expanded` bytes of `unit` (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(unit) for _ in range(expanded // len(unit))]
    out.append(compressor.flush())
    return b"".join(out)


def deflate_bomb(
    head: bytes, expanded: int, tail: bytes = b"", *, container: str = "gzip"
) -> bytes:
    """A valid gzip (or zlib) stream of `head`, NULs, then `tail`, `expanded` bytes in all
    (NULs in whole MiB), built without ever compressing gigabytes: after a full flush every
    1 MiB block of NULs compresses to the same bytes, so one block is repeated, and the
    trailer's checksum and size are computed over the real expansion.  ~1 KB per MiB."""
    block = b"\x00" * (1 << 20)
    gz = container == "gzip"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if gz else 15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    blocks = (expanded - len(head) - len(tail)) // len(block)
    check = zlib.crc32(head) if gz else zlib.adler32(head)
    for _ in range(blocks):
        check = zlib.crc32(block, check) if gz else zlib.adler32(block, check)
    check = zlib.crc32(tail, check) if gz else zlib.adler32(tail, check)
    total = len(head) + blocks * len(block) + len(tail)
    if gz:
        trailer = check.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little")
        return start + repeated * blocks + end[:-8] + trailer
    return start + repeated * blocks + end[:-4] + check.to_bytes(4, "big")


def pickled_nuls(expanded: int) -> tuple[bytes, bytes]:
    """(head, tail) of a harmless pickle that is one bytes object of NULs, `expanded` bytes in
    all (for ``deflate_bomb``: unpacked in full it is a clean pickle)."""
    head = b"\x80\x04\x8e"  # PROTO 4, BINBYTES8 <length>
    nuls = ((expanded - len(head) - 8 - 1) >> 20) << 20
    return head + nuls.to_bytes(8, "little"), b"."  # STOP
