"""Tar archives and single-stream compression (gzip, bz2, xz, lzma-alone, zlib, and joblib's
legacy "Z-file": a short header, then zlib).

Every byte that comes out of a decompressor is counted against the total budget and the
expansion ratio, so a bomb stops as a finding long before memory or disk fill up.  A
decompression error ends the stream (the member scanner then sees a truncated file and reports
what it read so far) and is itself a finding.  Formats without a stdlib decoder (7z, lz4,
zstd) are reported as unscannable: fail closed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zlib
from collections.abc import Callable
from typing import IO

from .detect import zfile_header
from .model import RATIO_FLOOR, Context, join
from .stream import CHUNK_MAX

ScanFn = Callable[[IO[bytes], str, int, int | None, bool, str | None], str]
"""``scan(file, location, depth, size, seekable, hint) -> format``: the recursive dispatcher."""

WEAK_MAGIC = frozenset({"zlib", "lzma"})
_DECODE_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def unsafe_path(name: str) -> bool:
    """Absolute, drive-qualified or ``..``-escaping archive member names."""
    norm = name.replace("\\", "/")
    return norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in norm.split("/")


class _Counting(io.RawIOBase):
    """Counts the compressed bytes a decompressor consumes."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        b[: len(data)] = data
        self.count += len(data)
        return len(data)


class _Zlib(io.RawIOBase):
    """A raw zlib stream (joblib's default compressor) as a readable file."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._d = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            src = self._d.unconsumed_tail or self._f.read(CHUNK_MAX)
            if not src:
                if not self._d.eof:
                    raise EOFError("zlib stream ends early")
                return 0
            out = self._d.decompress(src, len(b))
            if out:
                b[: len(out)] = out
                return len(out)
            if self._d.eof:
                return 0


class _Guard(io.RawIOBase):
    """Decompressed output: budget and ratio checks; decode errors become end-of-stream."""

    def __init__(
        self, ctx: Context, inner: io.BufferedIOBase, src: _Counting, location: str
    ) -> None:
        self._ctx, self._inner, self._src, self._loc = ctx, inner, src, location
        self.out = 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is not None:
            return 0
        try:
            data = self._inner.read1(len(b))  # one decode step: keep data read before an error
        except _DECODE_ERRORS as e:
            self.error = str(e) or type(e).__name__
            return 0
        n = len(data)
        b[:n] = data
        self.out += n
        self._ctx.count_unpacked(n, self._loc)
        if self.out >= RATIO_FLOOR:
            self._ctx.check_ratio(self.out, self._src.count, self._loc)
        return n


def _decompressor(kind: str, src: IO[bytes]) -> io.BufferedIOBase:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=src, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(src)
    if kind in ("xz", "lzma"):
        return lzma.LZMAFile(src, format=lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)
    return io.BufferedReader(_Zlib(src))


def scan_compressed(
    ctx: Context, kind: str, f: IO[bytes], location: str, depth: int, scan: ScanFn
) -> str:
    src = _Counting(f)
    packed = io.BufferedReader(src)
    declared = None
    if kind == "joblib-zf":  # sniffed, so the header is there: skip it, a zlib stream follows
        offset, declared = zfile_header(packed.peek(64)[:64]) or (0, None)
        packed.read(offset)
    guard = _Guard(ctx, _decompressor(kind, packed), src, location)
    with io.BufferedReader(guard, buffer_size=CHUNK_MAX) as stream:
        inner = scan(stream, location, depth + 1, None, False, None)
        while stream.read(CHUNK_MAX):  # the rest still counts against size and ratio limits
            pass
    if guard.error is not None:
        if kind in WEAK_MAGIC and guard.out == 0:
            return "unknown"  # the magic bytes were a coincidence
        ctx.add("container-malformed", f"{kind} stream is corrupt ({guard.error})", location)
    elif declared is not None and declared != guard.out:
        ctx.add(
            "container-malformed",
            f"joblib Z-file declares {declared} bytes but holds {guard.out}",
            location,
        )
    return kind if inner in ("other", "unknown") else f"{kind}+{inner}"


def scan_tar(
    ctx: Context, f: IO[bytes], seekable: bool, location: str, depth: int, scan: ScanFn
) -> str:
    names: set[str] = set()
    try:
        with tarfile.open(fileobj=f, mode="r:" if seekable else "r|") as tf:
            for m in tf:
                ctx.count_entries(1, location)
                loc = join(location, m.name)
                if unsafe_path(m.name) or ((m.issym() or m.islnk()) and unsafe_path(m.linkname)):
                    ctx.add("archive-path", "entry would be extracted outside its folder", loc)
                if not m.isreg():
                    continue
                ctx.count_unpacked(m.size, loc)
                names.add(m.name)
                member = tf.extractfile(m)
                if member is None:
                    continue
                hint = {"storages": "torch-storages", "tensors": "torch-tensors"}.get(m.name)
                if m.name in ("pickle", "sys_info"):
                    hint = "pickle!"
                with member:
                    scan(member, loc, depth + 1, m.size, seekable, hint)
    except (tarfile.TarError, *_DECODE_ERRORS) as e:
        ctx.add("container-malformed", f"tar archive cannot be read ({e})", location)
    return "pytorch-legacy-tar" if {"storages", "tensors", "pickle"} <= names else "tar"
