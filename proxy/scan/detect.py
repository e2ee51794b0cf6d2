"""Format detection from content (magic bytes and structure), never from file names."""

from __future__ import annotations

import struct
from typing import IO

HEAD = 4096

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SAFETENSORS_MAX_HEADER = 100_000_000
PICKLE_OPCODES = frozenset(
    b"().012BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}" + bytes(range(0x80, 0x99))
)

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x93NUMPY", "npy"),
    (b"GGUF", "gguf"),
    (HDF5_SIGNATURE, "hdf5"),
    # Raw-tensor formats with no code path (legacy llama.cpp/whisper.cpp ggml, fastText).
    (b"lmgg", "ggml"),
    (b"fmgg", "ggml"),
    (b"tjgg", "ggml"),
    (b"algg", "ggml"),
    (b"\xba\x16\x4f\x2f", "fasttext"),
)
OPAQUE = frozenset({"ggml", "fasttext"})
"""Recognised by their magic alone: nothing in them is ever deserialised into objects."""
ZFILE_PREFIX = b"ZF"
_ZFILE_FIELD = 19  # joblib: len(hex(2**64)), the field the length is written in

CONTAINERS = frozenset({"zip", "tar", "gzip", "bz2", "xz", "lzma", "zlib", "joblib-zf"})
UNSCANNABLE = {
    "7z": "7z archive cannot be inspected (no vetted decoder); blocked fail-closed",
    "lz4": "lz4 stream cannot be inspected (no stdlib decoder); blocked fail-closed",
    "zstd": "zstd stream cannot be inspected (no stdlib decoder); blocked fail-closed",
}


def sniff(head: bytes, size: int | None = None) -> str:
    """The format the leading bytes claim: a name from this module, ``onnx?`` or ``?``."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if zfile_header(head) is not None:
        return "joblib-zf"
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"1AY&SY":
        return "bz2"
    if is_tar(head):
        return "tar"
    if is_safetensors(head, size):  # before pickle: a 0x0?80-byte header starts like PROTO
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "pickle"
    if len(head) >= 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
        return "zlib"
    if head[:2] == b"\x5d\x00" and len(head) >= 13:  # joblib's lzma test: 2 bytes
        return "lzma"
    if head[:1] == b"\x08":
        return "onnx?"
    return "?"


def zfile_header(head: bytes) -> tuple[int, int] | None:
    """``(data offset, declared length)`` of joblib's legacy "Z-file" (joblib < 0.10, still
    loaded by ``joblib.load``): ``ZF``, the pickle's length in hex padded to 19 bytes (one
    more space in files from Python 2), then a zlib stream."""
    if not head.startswith(ZFILE_PREFIX) or len(head) < 2 + _ZFILE_FIELD + 2:
        return None
    try:
        length = int(head[2 : 2 + _ZFILE_FIELD], 16)  # exactly what joblib parses
    except ValueError:
        return None
    offset = 2 + _ZFILE_FIELD
    if head[offset : offset + 1] == b" ":
        offset += 1
    return offset, length


def is_tar(head: bytes) -> bool:
    """A valid ustar/v7 header checksum in the first block (what ``tarfile.open`` accepts)."""
    if len(head) < 512 or (head[257:262] != b"ustar" and head[156:157] not in b"01234567\x00"):
        return False
    field = head[148:156].split(b"\x00", 1)[0].strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    signed = sum(struct.unpack("148b", head[:148])) + 256
    signed += sum(struct.unpack("356b", head[156:512]))
    return stored in (unsigned, signed) and any(head[:100])


def is_safetensors(head: bytes, size: int | None = None) -> bool:
    """An 8-byte header length that fits the file, then a JSON object (``{"`` or ``{}``)."""
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    if not 2 <= n <= SAFETENSORS_MAX_HEADER or (size is not None and 8 + n > size):
        return False
    body = head[8:].lstrip(b" \t\r\n")
    return body[:1] == b"{" and body[1:].lstrip(b" \t\r\n")[:1] in (b'"', b"}")


def hdf5_offset(f: IO[bytes], size: int) -> int | None:
    """Where an HDF5 superblock starts: 0, 512, 1024, 2048, ... (after a user block)."""
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
        f.seek(offset)
        if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 and e.reason == "unexpected end of data"
    return True
