"""The ``Range`` and ``If-Range`` request headers (RFC 9110 §14), decided for one body.

aiohttp's ``request.http_range`` cannot tell ``bytes=-0`` from ``bytes=0-`` and turns a
multi-range into an error, so the header is read here, by the rules:

* a unit other than ``bytes``, or a malformed ``ranges-specifier`` → the header is ignored
  (200 with the whole body);
* more than one range → ignored as well (the server MAY ignore Range; airlock sends no
  ``multipart/byteranges``);
* ``first-last`` / ``first-`` is satisfiable when *first* < size, ``-suffix`` when suffix > 0
  and the body is not empty; an unsatisfiable range → 416 with ``Content-Range: bytes */size``;
* ``If-Range`` that is not a strong match for the body's ETag (a stale or weak validator, or a
  date: no ``Last-Modified`` is sent for these bodies) → the Range is ignored (200).

A *continuation* is an open-ended range (``bytes=N-``): the shape every resuming client sends.
Slice reads such as HfFileSystem's are bounded (``bytes=a-b``) and are not continuations.
``tainted_upto`` is how far bytes that never passed verification may have reached some client
for this content (``mirror_store.fill``): a continuation starting inside that prefix could join
them to verified bytes, so it is answered with the whole body (200), which pip, uv and every
huggingface_hub generation take as "start again from zero".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """No range of the header overlaps the body: answer 416 with ``bytes */size``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"bytes */{size}")
        self.size = size


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    stop: int  # exclusive
    open_ended: bool = False  # ``first-``: the shape of a resume

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


@dataclass(frozen=True, slots=True)
class RangeChoice:
    """What to send: ``range`` None means the whole body with 200."""

    range: ByteRange | None
    refused_resume: bool = False  # a continuation into unverified bytes, answered whole


def _parse_one(spec: str, size: int) -> ByteRange | None:
    """One ``range-spec``; None when unsatisfiable.  Raises ValueError when malformed."""
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(spec)
    first, last = m.group(1), m.group(2)
    if not first and not last:
        raise ValueError(spec)
    if not first:  # suffix-range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        return ByteRange(max(0, size - n), size)
    start = int(first)
    if last and int(last) < start:
        raise ValueError(spec)  # invalid range-spec: the whole header is ignored
    if start >= size:
        return None
    if not last:
        return ByteRange(start, size, open_ended=True)
    return ByteRange(start, min(int(last) + 1, size))


def _if_range_holds(if_range: str | None, etag: str | None) -> bool:
    if if_range is None:
        return True
    value = if_range.strip()
    if not value.startswith('"') or etag is None:
        return False  # a date, a weak tag, or nothing to compare with
    return value == f'"{etag}"'


def choose_range(
    range_header: str | None,
    if_range: str | None,
    size: int,
    etag: str | None,
    tainted_upto: int = 0,
) -> RangeChoice:
    """Decide the part of a *size*-byte body to send.  Raises Unsatisfiable (→ 416)."""
    if range_header is None:
        return RangeChoice(None)
    unit, sep, specs = range_header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return RangeChoice(None)
    parts = specs.split(",")
    try:
        parsed = [_parse_one(p, size) for p in parts]
    except ValueError:
        return RangeChoice(None)
    if len(parsed) > 1:
        return RangeChoice(None)
    chosen = parsed[0]
    if chosen is None:
        raise Unsatisfiable(size)
    if not _if_range_holds(if_range, etag):
        return RangeChoice(None)
    if chosen.open_ended and 0 < chosen.start <= tainted_upto:
        return RangeChoice(None, refused_resume=True)
    return RangeChoice(chosen)
