"""ZIP archives (PyTorch checkpoints, TorchScript, ``.keras``, ``.npz``, plain zips).

Central-directory sizes are checked against the limits before anything is inflated; every
local header is parsed and compared with its directory entry (the name/flag/CRC tricks that
made other scanners skip members are findings here); members are scanned by content as streams
(stored members as zero-copy windows).  Raw tensor storages of torch archives are not read:
torch never unpickles them.
"""

from __future__ import annotations

import collections
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from . import keras
from .containers import ScanFn, unsafe_path
from .model import Context, join
from .stream import Window, buffered

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
TORCH_PICKLES = frozenset({"data.pkl", "constants.pkl", "attributes.pkl"})
MAX_CONFIG = 64 << 20


@dataclass(slots=True)
class _Entry:
    info: zipfile.ZipInfo
    data_start: int
    method: int


def classify(names: list[str]) -> str:
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return "pytorch-zip"
    if "config.json" in names and {"metadata.json", "model.weights.h5"} & set(names):
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def _raw_storage(name: str) -> bool:
    """``<root>/data/<key>``: raw tensor bytes that torch reads without unpickling."""
    parts = name.split("/")
    return len(parts) == 3 and parts[1] == "data"


def _local(ctx: Context, f: IO[bytes], size: int, info: zipfile.ZipInfo, loc: str) -> _Entry | None:
    f.seek(info.header_offset)
    raw = f.read(_LOCAL.size)
    if len(raw) < _LOCAL.size or raw[:4] != b"PK\x03\x04":
        ctx.add("container-malformed", "zip entry has no local header", loc)
        return None
    _, _, flags, method, _, _, _, _, _, nlen, elen = _LOCAL.unpack(raw)
    name = f.read(nlen).decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if name != info.orig_filename:
        ctx.add("container-malformed", f"zip local header names {name[:80]!r} instead", loc)
        return None
    if (flags | info.flag_bits) & 0x1:
        ctx.add("unscannable", "zip entry is encrypted", loc)
        return None
    if method != info.compress_type:
        ctx.add("container-malformed", "zip local header and directory disagree on method", loc)
        return None
    start = info.header_offset + _LOCAL.size + nlen + elen
    if start + info.compress_size > size:
        ctx.add("container-malformed", "zip entry runs past the end of the archive", loc)
        return None
    return _Entry(info, start, method)


def _overlaps(entries: list[_Entry], end_of_data: int) -> bool:
    entries = sorted(entries, key=lambda e: e.info.header_offset)
    for a, b in zip(entries, [*entries[1:], None], strict=True):
        limit = b.info.header_offset if b is not None else end_of_data
        if a.data_start + a.info.compress_size > limit:
            return True
    return False


def _declared_entries(f: IO[bytes]) -> int | None:
    """Entry count from the end-of-central-directory record, read before parsing the directory."""
    end_record = getattr(zipfile, "_EndRecData", None)
    try:
        rec = end_record(f) if end_record is not None else None
    except (OSError, ValueError, struct.error):
        return None
    return int(rec[4]) if rec else None  # _ECD_ENTRIES_TOTAL (zip64-aware)


def scan_zip(ctx: Context, f: IO[bytes], size: int, location: str, depth: int, scan: ScanFn) -> str:
    declared = _declared_entries(f)
    if declared is not None and ctx.entries + declared > ctx.limits.max_entries:
        ctx.count_entries(declared, location)  # raises Abort with the finding
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        ctx.add("container-malformed", f"zip archive cannot be read ({e})", location)
        return "zip"
    with zf:
        infos = zf.infolist()
        ctx.count_entries(len(infos), location)
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dup = next(n for n, k in collections.Counter(names).items() if k > 1)
            ctx.add("container-malformed", f"zip lists {dup[:80]!r} more than once", location)
        ctx.count_unpacked(sum(i.file_size for i in infos), location)
        label = classify(names)
        entries: list[_Entry] = []
        for info in infos:
            loc = join(location, info.filename)
            if unsafe_path(info.filename):
                ctx.add("archive-path", "entry would be extracted outside its folder", loc)
            ctx.check_ratio(info.file_size, info.compress_size, loc)
            entry = _local(ctx, f, size, info, loc)
            if entry is not None:
                entries.append(entry)
        if _overlaps(entries, getattr(zf, "start_dir", size)):
            ctx.add("container-bomb", "zip entries overlap (quoted-overlap bomb)", location)
            return label
        for entry in entries:
            _member(ctx, zf, f, entry, label, location, depth, scan)
        if label == "torchscript":
            ctx.add(
                "torchscript-code",
                "TorchScript archive carries program code that runs when it is loaded",
                location,
            )
        if "config.json" in names:
            _keras_config(ctx, zf, join(location, "config.json"), strict=label == "keras")
    return label


def _member(
    ctx: Context,
    zf: zipfile.ZipFile,
    f: IO[bytes],
    entry: _Entry,
    label: str,
    location: str,
    depth: int,
    scan: ScanFn,
) -> None:
    info = entry.info
    loc = join(location, info.filename)
    if info.is_dir() or (label in ("pytorch-zip", "torchscript") and _raw_storage(info.filename)):
        return
    base = info.filename.rpartition("/")[2]
    hint = "pickle!" if label in ("pytorch-zip", "torchscript") and base in TORCH_PICKLES else None
    try:
        if entry.method == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                ctx.add("container-malformed", "stored zip entry changes size", loc)
                return
            window = Window(f, entry.data_start, info.file_size)
            with buffered(window) as member:
                scan(member, loc, depth + 1, info.file_size, True, hint)
            if window.crc_complete() and window.crc != info.CRC:
                ctx.add("container-malformed", "zip entry fails its CRC check", loc)
        elif entry.method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
            with zf.open(info) as stream:
                scan(stream, loc, depth + 1, info.file_size, False, hint)
        else:
            ctx.add("unscannable", f"zip compression method {entry.method} is not supported", loc)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as e:
        ctx.add("container-malformed", f"zip entry is corrupt ({e})", loc)


def _keras_config(ctx: Context, zf: zipfile.ZipFile, loc: str, *, strict: bool) -> None:
    info = zf.getinfo("config.json")
    text = None
    if info.file_size <= MAX_CONFIG:
        try:
            with zf.open(info) as stream:
                text = stream.read(MAX_CONFIG + 1).decode("utf-8")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError):
            text = None
    if text is None:
        if strict:
            ctx.add("keras-unsafe-config", "config.json cannot be read or is too large", loc)
        return
    keras.check_config_text(ctx, text, loc, strict=strict)
