"""Structural recognisers for serialisations that carry no code: protobuf and msgpack.

They only *identify* content that no other scanner claimed (TF GraphDef/SavedModel ``.pb``,
SentencePiece ``.model``, Flax ``.msgpack``), so that such files under model-like names are not
reported as unrecognised.  A file is recognised only if it parses completely, to its last byte;
the walk is streaming (payloads are skipped, never held) and bounded in items, so a file that
would need more is not recognised (and stays a finding under a model-like name: fail closed).
"""

from __future__ import annotations

from .stream import Reader, Truncated

MAX_ITEMS = 2_000_000
"""Fields (protobuf) or values (msgpack) walked before giving up."""

_PB_WIRE_TYPES = frozenset({0, 1, 2, 5})  # varint, fixed64, length-delimited, fixed32


class _NotIt(Exception):
    pass


def _varint(r: Reader) -> int:
    value = shift = 0
    while True:
        b = r.byte()
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
        if shift >= 70:
            raise _NotIt


def _protobuf(r: Reader) -> bool:
    items = 0
    while not r.at_eof():
        items += 1
        if items > MAX_ITEMS:
            return False
        tag = _varint(r)
        wire, field = tag & 7, tag >> 3
        if field == 0 or field >= 1 << 29 or wire not in _PB_WIRE_TYPES:
            return False
        if wire == 0:
            _varint(r)
        else:
            r.skip({1: 8, 5: 4}.get(wire) or _varint(r))
    return items > 0


# msgpack first bytes -> (payload bytes, length-field bytes, child-count factor)
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED.update({0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8})
_FIXED.update({0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17})  # fixext: type byte + data
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin, str: length bytes
_EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}  # ext: length bytes, then a type byte
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}  # array, map


def _msgpack(r: Reader) -> bool:
    pending = 1
    items = 0
    while pending:
        pending -= 1
        items += 1
        if items > MAX_ITEMS:
            return False
        b = r.byte()
        if b <= 0x7F or b >= 0xE0:
            continue
        if b <= 0x8F:
            pending += 2 * (b & 0x0F)
        elif b <= 0x9F:
            pending += b & 0x0F
        elif b <= 0xBF:
            r.skip(b & 0x1F)
        elif b in _FIXED:
            r.skip(_FIXED[b])
        elif b in _SIZED:
            r.skip(int.from_bytes(r.exact(_SIZED[b]), "big"))
        elif b in _EXT:
            r.skip(int.from_bytes(r.exact(_EXT[b]), "big") + 1)
        elif b in _CONTAINERS:
            width, factor = _CONTAINERS[b]
            pending += factor * int.from_bytes(r.exact(width), "big")
        else:
            return False  # 0xC1 is never used
    return r.at_eof()


def identify(r: Reader) -> str | None:
    """``msgpack`` or ``protobuf`` if all of ``r`` parses as one, else ``None``.

    One attempt, chosen by the first byte (a msgpack map or array, as Flax writes, or else a
    protobuf field tag), so a stream that cannot be rewound is read only once.
    """
    first = r.peek(1)
    if not first:
        return None
    b = first[0]
    msgpack = 0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF
    try:
        ok = _msgpack(r) if msgpack else _protobuf(r)
    except (Truncated, _NotIt):
        return None
    return ("msgpack" if msgpack else "protobuf") if ok else None
