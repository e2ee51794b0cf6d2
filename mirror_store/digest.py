"""The Digest type (a validated sha256 hex string) and the streaming hashers used on write."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import NewType

Digest = NewType("Digest", str)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

# Algorithms an upstream may name that we can verify.  Anything else is ignored, and a file
# with no verifiable hash at all is refused by the caller (fail closed).
GIT_BLOB_SHA1 = "git-blob-sha1"  # HF: regular (non-LFS) files are addressed by their git blob id
VERIFIABLE = (
    GIT_BLOB_SHA1,
    "sha256",
    "sha512",
    "sha384",
    "sha224",
    "blake2b",
    "blake2s",
    "sha1",
    "md5",
)


def parse_digest(value: str) -> Digest:
    """Return *value* as a Digest, or raise ValueError if it is not 64 lowercase hex digits."""
    if not _SHA256_RE.match(value):
        raise ValueError(f"not a sha256 hex digest: {value[:80]!r}")
    return Digest(value)


def is_digest(value: str) -> bool:
    return bool(_SHA256_RE.match(value))


@dataclass
class MultiHasher:
    """Hash a stream with sha256 (the store's address) plus the upstream's own algorithms."""

    expected: dict[str, str]
    expected_size: int | None = None
    _hashers: dict[str, hashlib._Hash] = field(default_factory=dict)
    size: int = 0

    def __post_init__(self) -> None:
        self._hashers["sha256"] = hashlib.sha256()
        for algo in self.expected:
            if algo == GIT_BLOB_SHA1:
                if self.expected_size is None:
                    raise ValueError("a git blob hash needs the expected size")
                # git hashes "blob <size>\0" + content; the header is fed up front.
                h = hashlib.sha1(usedforsecurity=False)
                h.update(b"blob %d\0" % self.expected_size)
                self._hashers[algo] = h
            elif algo not in self._hashers:
                self._hashers[algo] = hashlib.new(algo)

    def update(self, chunk: bytes) -> None:
        for h in self._hashers.values():
            h.update(chunk)
        self.size += len(chunk)

    def sha256(self) -> Digest:
        return Digest(self._hashers["sha256"].hexdigest())

    def mismatches(self) -> list[str]:
        """Human-readable mismatches (size and every algorithm); empty when all match."""
        problems = []
        if self.expected_size is not None and self.size != self.expected_size:
            problems.append(f"size expected {self.expected_size} got {self.size}")
        return problems + [
            f"{algo} expected {want} got {self._hashers[algo].hexdigest()}"
            for algo, want in self.expected.items()
            if self._hashers[algo].hexdigest() != want.lower()
        ]


def verifiable_hashes(hashes: dict[str, str]) -> dict[str, str]:
    """The subset of *hashes* we can check, keeping only well-formed hex values."""
    out: dict[str, str] = {}
    for algo, value in hashes.items():
        algo_l = algo.lower()
        if algo_l in VERIFIABLE and re.fullmatch(r"[0-9a-fA-F]+", value or ""):
            out[algo_l] = value.lower()
    return out
