"""File content of the stand-in Hugging Face Hub's repositories, streamed in slices.

A ``Blob`` is either small in-memory bytes (``BytesBlob``) or content generated from a seed in
1 MiB chunks and never held whole (``GeneratedBlob``, and ``SafetensorsBlob``: a valid
safetensors file of any size). ``blob_sha256`` hashes one once per process. The repositories
built from them are in tests/fakes/hf_repos.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

CHUNK = 1024 * 1024


class Blob(Protocol):
    """File content that can be streamed in slices."""

    @property
    def size(self) -> int: ...

    def __hash__(self) -> int: ...

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes of ``[start, end)`` in order (end defaults to the size)."""
        ...


@dataclass(frozen=True)
class BytesBlob:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        stop = self.size if end is None else min(end, self.size)
        for pos in range(start, stop, CHUNK):
            yield self.data[pos : min(pos + CHUNK, stop)]


@functools.cache
def _seed_block(seed: int) -> bytes:
    return random.Random(seed).randbytes(CHUNK)


def _generated_chunk(seed: int, index: int) -> bytes:
    block = _seed_block(seed)
    turn = (index * 7919 + 1) % CHUNK
    return index.to_bytes(8, "big") + (block[turn:] + block[:turn])[8:]


@dataclass(frozen=True)
class GeneratedBlob:
    """Deterministic pseudo-random content of any size; chunk i is derived from (seed, i)."""

    seed: int
    length: int

    @property
    def size(self) -> int:
        return self.length

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        stop = self.length if end is None else min(end, self.length)
        pos = start
        while pos < stop:
            index, offset = divmod(pos, CHUNK)
            piece = _generated_chunk(self.seed, index)[offset : offset + stop - pos]
            yield piece
            pos += len(piece)


@dataclass(frozen=True)
class SafetensorsBlob:
    """A valid safetensors file of exactly *length* bytes: a header naming one U8 tensor, then
    deterministic pseudo-random tensor data (a large model file the scanner can vouch for)."""

    seed: int
    length: int

    @functools.cached_property
    def header(self) -> bytes:
        data = self.length - 8 - len(self._json(self.length))
        text = self._json(data)
        text += b" " * (self.length - 8 - data - len(text))  # the format allows space padding
        return len(text).to_bytes(8, "little") + text

    @staticmethod
    def _json(data: int) -> bytes:
        info = {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}
        return json.dumps({"weight": info}, separators=(",", ":")).encode()

    @property
    def size(self) -> int:
        return self.length

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        head = self.header
        stop = self.length if end is None else min(end, self.length)
        if start < len(head):
            yield head[start : min(stop, len(head))]
            start = len(head)
        if start < stop:
            body = GeneratedBlob(self.seed, self.length - len(head))
            yield from body.chunks(start - len(head), stop - len(head))


@functools.cache
def blob_sha256(blob: Blob) -> str:
    """sha256 of a blob, computed once per process for each (hashable) blob."""
    digest = hashlib.sha256()
    for piece in blob.chunks():
        digest.update(piece)
    return digest.hexdigest()
