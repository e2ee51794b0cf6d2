"""Responses for artifacts: stored blobs (sendfile, ETag, Range) and fills still streaming.

Both honour a single ``Range`` (206 with ``Content-Range``; 416 when unsatisfiable) and use
the sha256 as a strong ETag.  While a fill runs, a reader gets bytes as they arrive; if the
fill fails (hash mismatch, upstream cut) the connection is cut short, so the client's transfer
fails instead of completing with refused bytes.

Each body sent is counted in the app's metrics (when set up): a stored blob as a store hit, a
running fill as served from upstream, with the bytes actually written.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import structlog
from aiohttp import web

from mirror_store.fill import Fill, FillFailed, tail

from .appkeys import METRICS
from .errors import BadRequest
from .ranges import ByteRange, Unsatisfiable, choose_range

log = structlog.get_logger("airlock.serving")
CHUNK = 256 * 1024


def _range(
    request: web.Request, size: int, etag: str | None, tainted_upto: int, key: str
) -> ByteRange | None:
    """The single range to send (None: the whole body); 416 when unsatisfiable."""
    try:
        choice = choose_range(
            request.headers.get("Range"),
            request.headers.get("If-Range"),
            size,
            etag,
            tainted_upto,
        )
    except Unsatisfiable as e:
        raise web.HTTPRequestRangeNotSatisfiable(
            headers={"Content-Range": f"bytes */{e.size}"}
        ) from e
    if choice.refused_resume:
        log.warning(
            "resume_refused",
            key=key,
            range=request.headers.get("Range"),
            unverified_upto=tainted_upto,
            reason="an earlier transfer of this content failed verification after sending bytes"
            " up to this offset; the whole verified body is sent instead",
        )
    return choice.range


def _count(request: web.Request, source: str, sent: int) -> None:
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.served_from(source)
        metrics.sent_bytes(source, sent)


def _etag_matches(request: web.Request, digest: str) -> bool:
    inm = request.headers.get("If-None-Match", "")
    return any(
        t.strip().strip('"').removeprefix("W/").strip('"') in (digest, "*")
        for t in inm.split(",")
        if t.strip()
    )


def _base_headers(
    digest: str | None, content_type: str, extra: Mapping[str, str] | None
) -> dict[str, str]:
    h = {"Content-Type": content_type, "Accept-Ranges": "bytes", **(extra or {})}
    if digest:
        h["ETag"] = f'"{digest}"'
        h["Cache-Control"] = "public, max-age=31536000, immutable"  # content-addressed
    return h


async def send_blob(
    request: web.Request,
    path: Path,
    digest: str,
    content_type: str,
    extra_headers: Mapping[str, str] | None = None,
    tainted_upto: int = 0,
) -> web.StreamResponse:
    """Serve a stored, verified blob with sendfile.

    *tainted_upto*: how far unverified bytes of this content may have reached a client
    (``Filler.tainted_upto``); a resume into that prefix gets the whole body.
    Raises FileNotFoundError (before anything is sent) if the blob is gone.
    """
    headers = _base_headers(digest, content_type, extra_headers)
    if _etag_matches(request, digest):
        return web.Response(status=304, headers={"ETag": headers["ETag"]})
    fh: BinaryIO = await asyncio.to_thread(open, path, "rb")
    try:
        size = os.fstat(fh.fileno()).st_size
        rng = _range(request, size, digest, tainted_upto, digest)
        start, stop = (rng.start, rng.stop) if rng else (0, size)
        resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
        if rng:
            resp.headers["Content-Range"] = rng.content_range(size)
        resp.content_length = stop - start
        writer = await resp.prepare(request)
        if request.method == "HEAD" or stop == start:
            await resp.write_eof()
            return resp
        transport = request.transport
        if transport is None or transport.is_closing() or writer is None:
            return resp
        try:
            try:
                await asyncio.get_running_loop().sendfile(transport, fh, start, stop - start)
            except NotImplementedError:  # e.g. TLS transports: copy in chunks off the loop
                await _copy_chunks(resp, fh, start, stop)
        except ConnectionError:  # the client went away, or the blob shrank under us
            _count(request, "store", 0)
            transport.abort()  # never a complete-looking body, never a 500 inside a 200
            return resp
    finally:
        fh.close()
    await resp.write_eof()
    _count(request, "store", stop - start)
    return resp


async def _copy_chunks(resp: web.StreamResponse, fh: BinaryIO, start: int, stop: int) -> None:
    pos = start
    while pos < stop:
        chunk = await asyncio.to_thread(os.pread, fh.fileno(), min(CHUNK, stop - pos), pos)
        if not chunk:
            raise ConnectionError("blob shorter than expected")
        await resp.write(chunk)
        pos += len(chunk)


async def send_fill(
    request: web.Request,
    fill: Fill,
    digest_hint: str | None,
    content_type: str,
    extra_headers: Mapping[str, str] | None = None,
    tainted_upto: int = 0,
) -> web.StreamResponse | None:
    """Stream a running fill.  None if it finished before we attached (serve the blob).

    The last byte of whatever is sent (the whole body or a range) waits for verification.
    """
    await fill.wait_started()  # raises FillFailed before anything is sent
    headers = _base_headers(digest_hint, content_type, extra_headers)
    size = fill.size
    rng = None
    if size is not None:
        rng = _range(request, size, digest_hint, tainted_upto, fill.key)
    start, stop = (rng.start, rng.stop) if rng else (0, size)
    body = tail(fill, start, stop)
    if body is None:
        return None
    resp = web.StreamResponse(status=206 if rng else 200, headers=headers)
    if rng:
        assert size is not None
        resp.headers["Content-Range"] = rng.content_range(size)
    if stop is not None:
        resp.content_length = stop - start
    await resp.prepare(request)
    if request.method == "HEAD":
        await body.aclose()  # type: ignore[attr-defined]
        await resp.write_eof()
        return resp
    sent = 0
    try:
        async for chunk in body:
            await resp.write(chunk)
            sent += len(chunk)
    except FillFailed as e:
        log.warning("transfer_aborted", key=fill.key, reason=e.reason)
        if request.transport is not None:
            request.transport.abort()  # the client must see a failed transfer
        return resp
    except ConnectionError:
        return resp
    finally:
        _count(request, "upstream", sent)
    await resp.write_eof()
    return resp


def safe_component(value: str, what: str, max_len: int = 255) -> str:
    """Reject path components that could never be a legitimate name (before any lookup)."""
    if not value or len(value) > max_len:
        raise BadRequest(f"{what} must be 1-{max_len} characters")
    if value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise BadRequest(f"{what} {value[:80]!r} is not a valid name")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(f"{what} contains control characters")
    return value
