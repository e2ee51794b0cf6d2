"""Just enough HDF5 to read the root group's string attributes (where legacy Keras ``.h5`` files
keep ``model_config``/``training_config``), with every address and length bounds-checked.

Supported: superblock v0-v3, object headers v1/v2 with continuation blocks, compact attribute
messages v1-v3 holding fixed-length or variable-length (global heap) strings.  Dense attribute
storage (fractal heap) and shared messages are not read: those raise :class:`H5Error`, so the
caller can fail closed.  Datasets (the weights) are never touched.  A hand-written reader was
chosen over h5py/libhdf5: a multi-megabyte native library parsing hostile files has a long
CVE history, while this needs ~200 lines over a handful of structures.
"""

from __future__ import annotations

from typing import IO

WANTED = frozenset({"model_config", "training_config"})
MAX_MESSAGES = 4096
MAX_BLOCKS = 256
MAX_VALUE = 64 << 20
_ATTRIBUTE, _ATTRIBUTE_INFO, _CONTINUATION = 0x0C, 0x15, 0x10


class H5Error(Exception):
    pass


class _File:
    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.size = f, size
        self.o = self.l = 8
        self.base = 0

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise H5Error(f"structure at {addr} (+{n}) lies outside the file")
        self.f.seek(addr)
        data = self.f.read(n)
        if len(data) != n:
            raise H5Error("short read")
        return data

    def uint(self, data: bytes, pos: int, width: int) -> int:
        if pos + width > len(data):
            raise H5Error("field runs past its structure")
        return int.from_bytes(data[pos : pos + width], "little")

    def undefined(self, addr: int) -> bool:
        return addr == (1 << (8 * self.o)) - 1


def root_attributes(f: IO[bytes], sb_offset: int, size: int) -> dict[str, str]:
    """Decoded values of the wanted string attributes of the root group."""
    h = _File(f, size)
    sb = h.read(sb_offset, min(96, size - sb_offset))
    version = sb[8]
    if version in (0, 1):
        h.o, h.l = sb[13], sb[14]
        pos = 24 if version == 0 else 28
        h.base = h.uint(sb, pos, h.o)
        root = h.uint(sb, pos + 4 * h.o + h.o, h.o)  # root symbol-table entry: name, header
    elif version in (2, 3):
        h.o, h.l = sb[9], sb[10]
        h.base = h.uint(sb, 12, h.o)
        root = h.uint(sb, 12 + 3 * h.o, h.o)
    else:
        raise H5Error(f"superblock version {version}")
    if h.o not in (2, 4, 8) or h.l not in (2, 4, 8):
        raise H5Error("unsupported address sizes")
    out: dict[str, str] = {}
    for mtype, flags, body in _messages(h, h.base + root):
        if mtype == _ATTRIBUTE_INFO:
            heap_at = 2 + (2 if body[1] & 1 else 0)
            if not h.undefined(h.uint(body, heap_at, h.o)):
                raise H5Error("root attributes use dense storage")
        elif mtype == _ATTRIBUTE:
            if flags & 0x02:
                raise H5Error("root attribute is a shared message")
            name, value = _attribute(h, body)
            if name in WANTED and value is not None:
                out[name] = value
    return out


def _messages(h: _File, addr: int) -> list[tuple[int, int, bytes]]:
    first = h.read(addr, 16)
    blocks: list[tuple[int, int]] = []
    msgs: list[tuple[int, int, bytes]] = []
    if first[:4] == b"OHDR":
        flags = first[5]
        pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        head = h.read(addr, pos + width)
        blocks.append((addr + pos + width, h.uint(head, pos, width)))
        v2 = True
    elif first[0] == 1:
        blocks.append((addr + 16, h.uint(first, 8, 4)))
        v2 = False
    else:
        raise H5Error("unknown object header version")
    while blocks:
        if len(blocks) + len(msgs) > MAX_BLOCKS + MAX_MESSAGES:
            raise H5Error("object header too complex")
        start, length = blocks.pop(0)
        data = h.read(start, length)
        pos = 0
        if v2 and data[:4] == b"OCHK":
            pos, data = 4, data[:-4]
        hlen = (4 + (2 if first[5] & 0x04 else 0)) if v2 else 8
        while pos + hlen <= len(data):
            if v2:
                mtype, size, mflags = data[pos], h.uint(data, pos + 1, 2), data[pos + 3]
            else:
                mtype, size, mflags = h.uint(data, pos, 2), h.uint(data, pos + 2, 2), data[pos + 4]
            body = data[pos + hlen : pos + hlen + size]
            if len(body) != size:
                raise H5Error("message runs past its block")
            pos += hlen + size
            if mtype == _CONTINUATION:
                blocks.append((h.base + h.uint(body, 0, h.o), h.uint(body, h.o, h.l)))
            elif mtype:
                msgs.append((mtype, mflags, body))
            if len(msgs) > MAX_MESSAGES:
                raise H5Error("object header too complex")
    return msgs


def _pad(n: int, version: int) -> int:
    return (n + 7) & ~7 if version == 1 else n


def _attribute(h: _File, body: bytes) -> tuple[str, str | None]:
    version = body[0]
    if version not in (1, 2, 3):
        raise H5Error(f"attribute message version {version}")
    if version > 1 and body[1] & 0x03:
        raise H5Error("attribute with a shared datatype or dataspace")
    name_len, dt_len, ds_len = (h.uint(body, p, 2) for p in (2, 4, 6))
    pos = 9 if version == 3 else 8
    name = body[pos : pos + name_len].split(b"\x00", 1)[0].decode("utf-8", "replace")
    pos += _pad(name_len, version)
    dtype = body[pos : pos + dt_len]
    pos += _pad(dt_len, version)
    count = _elements(h, body[pos : pos + ds_len])
    pos += _pad(ds_len, version)
    if name not in WANTED:
        return name, None
    if len(dtype) < 8 or count != 1:
        raise H5Error(f"attribute {name} is not a single string")
    cls, width = dtype[0] & 0x0F, h.uint(dtype, 4, 4)
    if cls == 3:  # fixed-length string
        raw = body[pos : pos + width]
        if len(raw) != width:
            raise H5Error(f"attribute {name} is truncated")
    elif cls == 9 and dtype[1] & 0x0F == 1:  # variable-length string in the global heap
        raw = _heap_object(h, body[pos : pos + 4 + h.o + 4])
    else:
        raise H5Error(f"attribute {name} has datatype class {cls}")
    return name, raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _elements(h: _File, ds: bytes) -> int:
    if len(ds) < 4:
        raise H5Error("dataspace too short")
    version, rank = ds[0], ds[1]
    if version == 2 and ds[3] == 2:  # null dataspace
        return 0
    pos = 8 if version == 1 else 4
    count = 1
    for i in range(rank):
        count *= h.uint(ds, pos + i * h.l, h.l)
    return count


def _heap_object(h: _File, ref: bytes) -> bytes:
    length = h.uint(ref, 0, 4)
    collection = h.base + h.uint(ref, 4, h.o)
    index = h.uint(ref, 4 + h.o, 4)
    head = h.read(collection, 8 + h.l)
    if head[:4] != b"GCOL":
        raise H5Error("global heap collection signature missing")
    total = h.uint(head, 8, h.l)
    if total > MAX_VALUE:
        raise H5Error("global heap collection too large")
    data = h.read(collection, total)
    pos = 8 + h.l
    while pos + 8 + h.l <= len(data):
        idx = h.uint(data, pos, 2)
        size = h.uint(data, pos + 8, h.l)
        if idx == 0:
            break
        if idx == index:
            if size < length or pos + 8 + h.l + length > len(data):
                raise H5Error("global heap object is truncated")
            return data[pos + 8 + h.l : pos + 8 + h.l + length]
        pos += 8 + h.l + ((size + 7) & ~7)
    raise H5Error("global heap object not found")
