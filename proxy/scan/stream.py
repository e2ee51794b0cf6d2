"""Byte sources for the scanner: a counting file, windows into it, and a sequential reader.

Nothing here reads more than it is asked for (plus one bounded chunk of read-ahead), so memory
stays flat however large the file is; skips seek when the source can, and read-and-discard in
chunks when it cannot.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from typing import IO, Any, BinaryIO

CHUNK_MIN = 8 << 10
CHUNK_MAX = 256 << 10
COPY_CHUNK = 1 << 20


class Truncated(Exception):
    """The source ended before the bytes a structure promised."""


class CountingFile(io.RawIOBase):
    """The file on disk; counts every byte read through it (``bytes_scanned``)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return int(n or 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


class Window(io.RawIOBase):
    """A seekable read-only view of ``length`` bytes at ``start`` of a shared seekable file."""

    def __init__(self, f: IO[bytes], start: int, length: int) -> None:
        self._f = f
        self._start = start
        self._len = length
        self._pos = 0
        self.crc = 0
        self._crc_pos = 0  # CRC-32 of the bytes read sequentially from the start

    def crc_complete(self) -> bool:
        return self._crc_pos == self._len

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._len - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        if self._pos == self._crc_pos:
            self.crc = zlib.crc32(data, self.crc)
            self._crc_pos += len(data)
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._len}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def buffered(raw: io.RawIOBase) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size=CHUNK_MIN)


def size_of(f: IO[bytes]) -> int:
    here = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(here)
    return end


class Reader:
    """Sequential reader with a position, bounded lines and cheap skips.

    ``seekable`` sources skip by seeking; others read and discard.  ``size`` (when known) lets
    skips past the end fail at once instead of after a long discard.  ``buf``/``off`` are public
    for the pickle walker's hot loop: ``buf[off]`` is the next byte, ``base + off`` its offset.
    """

    __slots__ = ("_chunk", "_f", "_seekable", "base", "buf", "off", "size")

    def __init__(
        self, f: IO[bytes], *, seekable: bool, size: int | None = None, prefix: bytes = b""
    ) -> None:
        self._f = f
        self._seekable = seekable
        self.size = size
        self.buf = prefix
        self.off = 0
        self.base = 0
        self._chunk = CHUNK_MIN

    @property
    def pos(self) -> int:
        return self.base + self.off

    def _fill(self, need: int) -> None:
        parts = [self.buf[self.off :]]
        have = len(parts[0])
        while have < need:
            chunk = self._f.read(max(self._chunk, need - have))
            self._chunk = min(self._chunk * 2, CHUNK_MAX)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self.base += self.off
        self.buf = b"".join(parts)
        self.off = 0

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the source)."""
        if len(self.buf) - self.off < n:
            self._fill(n)
        data = self.buf[self.off : self.off + n]
        self.off += len(data)
        return data

    def byte(self) -> int:
        off = self.off
        if off >= len(self.buf):
            self._fill(1)
            off = 0
            if not self.buf:
                raise Truncated(f"end of data at offset {self.pos}")
        self.off = off + 1
        return self.buf[off]

    def unpack(self, s: struct.Struct) -> tuple[Any, ...]:
        """``s.unpack`` of the next ``s.size`` bytes, straight from the buffer."""
        n = s.size
        if len(self.buf) - self.off < n:
            self._fill(n)
            if len(self.buf) < n:
                raise Truncated(f"needed {n} bytes at offset {self.pos}")
        values = s.unpack_from(self.buf, self.off)
        self.off += n
        return values

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise Truncated(f"needed {n} bytes at offset {self.pos - len(data)}, got {len(data)}")
        return data

    def readline(self, limit: int) -> bytes | None:
        """A line with its newline, or ``None`` if none ends within ``limit`` bytes or the data."""
        while True:
            nl = self.buf.find(b"\n", self.off, self.off + limit)
            if nl >= 0:
                line = self.buf[self.off : nl + 1]
                self.off = nl + 1
                return line
            have = len(self.buf) - self.off
            if have >= limit:
                return None
            self._fill(have + CHUNK_MIN)
            if len(self.buf) == have:
                return None

    def peek(self, n: int) -> bytes:
        if len(self.buf) - self.off < n:
            self._fill(n)
        return self.buf[self.off : self.off + n]

    def at_eof(self) -> bool:
        return not self.peek(1)

    def skip(self, n: int) -> None:
        if n < 0:
            raise Truncated("negative length")
        have = len(self.buf) - self.off
        if n <= have:
            self.off += n
            return
        start = self.pos
        self.base, self.buf, self.off = start + have, b"", 0
        rest = n - have
        if self.size is not None and self.base + rest > self.size:
            raise Truncated(f"{n} bytes promised at offset {start}, past the end")
        if self._seekable:
            self._f.seek(rest, os.SEEK_CUR)
            self.base += rest
            return
        while rest:
            got = len(self._f.read(min(rest, COPY_CHUNK)))
            if not got:
                raise Truncated(f"{n} bytes promised at offset {start}, past the end")
            rest -= got
            self.base += got


def spool(head: bytes, f: IO[bytes], limit: int) -> tuple[IO[bytes], int] | None:
    """``head`` + the rest of ``f`` in an anonymous temp file (``None`` if over ``limit``)."""
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, closed there
    tmp.write(head)
    total = len(head)
    while True:
        chunk = f.read(COPY_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            tmp.close()
            return None
        tmp.write(chunk)
    tmp.seek(0)
    return tmp, total


class ReaderIO(io.RawIOBase):
    """A :class:`Reader` as a plain sequential file object (for tarfile, gzip, ...)."""

    def __init__(self, r: Reader) -> None:
        self._r = r

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._r.read(min(len(b), CHUNK_MAX))
        b[: len(data)] = data
        return len(data)
