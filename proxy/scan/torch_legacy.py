"""PyTorch's pre-zip formats, where raw storage bytes sit between pickles.

* v0.1.10 "stacked" files (``torch.save(..., _use_new_zipfile_serialization=False)``): pickles of
  the magic number, protocol version, sys info, the object (storages as persistent ids) and the
  storage key list, then for each key an int64 element count and the raw bytes.
* v0.1.1 tar files: members ``sys_info``, ``pickle``, ``storages`` and ``tensors``; the latter two
  interleave small pickles with raw data.

Sizes come from the pickled storage types and counts; anything inconsistent is malformed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .pickle_vm import Global, PickleError, Seq
from .stream import Reader

MAGIC = 0x1950A86A20F9469CFC6C
TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})

_ELEMENT = {
    "Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
    "Char": 1, "Byte": 1, "Bool": 1, "ComplexDouble": 16, "ComplexFloat": 8, "QUInt8": 1,
    "QInt8": 1, "QInt32": 4, "QUInt4x2": 1, "QUInt2x4": 1, "Untyped": 1,
}  # fmt: skip
_I64 = struct.Struct("<q")
_I32 = struct.Struct("<i")

Walk = Callable[[], object]


def element_size(storage_type: object) -> int | None:
    if not isinstance(storage_type, Global) or not storage_type.dotted.startswith("torch."):
        return None
    name = storage_type.name.rpartition(".")[2]
    return _ELEMENT.get(name.removesuffix("Storage")) if name.endswith("Storage") else None


def record_persid(storages: dict[str, tuple[object, int]], pid: object) -> None:
    """Remember ``('storage', type, key, location, numel, view)`` persistent ids."""
    if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
        key, numel = pid[2], pid[4]
        if isinstance(key, str) and isinstance(numel, int):
            storages.setdefault(key, (pid[1], numel))


def _storage_bytes(r: Reader, storage_type: object, numel: int) -> None:
    size = element_size(storage_type)
    if size is None:
        raise PickleError(f"unknown storage type {storage_type!r}", r.pos)
    (header,) = _I64.unpack(r.exact(8))
    if header != numel or numel < 0:
        raise PickleError(f"storage holds {header} elements, its pickle says {numel}", r.pos)
    r.skip(numel * size)


def read_stacked(r: Reader, walk: Walk, storages: dict[str, tuple[object, int]]) -> None:
    """The rest of a v0.1.10 file after its magic-number pickle."""
    walk()  # protocol version
    walk()  # sys info
    storages.clear()
    walk()  # the saved object; persistent ids land in ``storages``
    keys = walk()
    if not isinstance(keys, Seq) or not keys.complete:
        raise PickleError("storage key list is not a readable list", r.pos)
    for key in keys.items:
        if not isinstance(key, str) or key not in storages:
            raise PickleError(f"storage key {key!r} is not referenced by the object", r.pos)
        storage_type, numel = storages[key]
        _storage_bytes(r, storage_type, numel)
    if not r.at_eof():
        raise PickleError("data after the last storage", r.pos)


def read_tar_storages(r: Reader, walk: Walk) -> None:
    """The ``storages`` member: count, then (key, location, type) pickles each with raw bytes."""
    count = walk()
    if not isinstance(count, int) or count < 0:
        raise PickleError("storage count is not an integer", r.pos)
    for _ in range(count):
        args = walk()
        if not (isinstance(args, tuple) and len(args) == 3):
            raise PickleError("storage record is not a (key, location, type) tuple", r.pos)
        header = r.peek(8)
        if len(header) < 8:
            raise PickleError("storage data truncated", r.pos)
        _storage_bytes(r, args[2], _I64.unpack(header)[0])
    walk()  # storage views
    if not r.at_eof():
        raise PickleError("data after the storage views", r.pos)


def read_tar_tensors(r: Reader, walk: Walk) -> None:
    """The ``tensors`` member: count, then (key, storage id, type) pickles each with geometry."""
    count = walk()
    if not isinstance(count, int) or count < 0:
        raise PickleError("tensor count is not an integer", r.pos)
    for _ in range(count):
        args = walk()
        if not (isinstance(args, tuple) and len(args) == 3):
            raise PickleError("tensor record is not a (key, storage, type) tuple", r.pos)
        (ndim,) = _I32.unpack(r.exact(4))
        if not 0 <= ndim <= 64:
            raise PickleError(f"tensor with {ndim} dimensions", r.pos)
        r.skip(4 + 16 * ndim + 8)
    if not r.at_eof():
        raise PickleError("data after the last tensor", r.pos)
