"""BlobStore: write-once, content-addressed files, verified before they become visible.

Layout under the store root::

    blobs/sha256/ab/cd/abcd…     visible blobs, fanned out by digest (2/2/rest)
    tmp/                          in-progress writes (same filesystem, so rename is atomic),
                                  each locked by its writer (``mirror_store.temps``)
    quarantine/sha256/…           blobs moved aside by fsck because their bytes no longer match

Every method here blocks (file I/O, hashing, fsync): callers on an event loop run them in a
thread.  Paths are built only from validated digests, never from request input.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from . import temps
from .digest import Digest, MultiHasher, is_digest, parse_digest


class VerificationError(Exception):
    """The bytes written do not match what the upstream promised; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class BlobWriter(Protocol):
    """One in-progress blob.  ``write`` then exactly one of ``commit`` or ``abort``."""

    @property
    def temp_path(self) -> Path:
        """Where the partial bytes live (readers may tail it while it grows)."""

    @property
    def size(self) -> int: ...

    def write(self, chunk: bytes) -> None:
        """Append and hash *chunk*."""

    def commit(self) -> Digest:
        """Verify, fsync and atomically publish; return the sha256.

        Raises:
            VerificationError: size or a hash differs; the temp file is removed.
        """

    def abort(self) -> None:
        """Discard the partial blob (idempotent)."""


class BlobStore(Protocol):
    """Write-once storage addressed by sha256."""

    def writer(self, expected: dict[str, str], expected_size: int | None = None) -> BlobWriter:
        """Start a blob; *expected* maps hash algorithm → hex value to verify on commit."""

    def path(self, digest: Digest) -> Path | None:
        """Filesystem path of a stored blob, or None if absent."""

    def blob_path(self, digest: Digest) -> Path:
        """Where the blob for *digest* lives, whether or not it exists (no I/O)."""

    def open(self, digest: Digest) -> BinaryIO:
        """Open a stored blob for reading.  Raises FileNotFoundError."""

    def delete(self, digest: Digest) -> bool:
        """Remove a blob; True if it existed."""

    def quarantine(self, digest: Digest) -> Path:
        """Move a blob out of the visible tree; return where it went."""

    def digests(self) -> Iterator[Digest]:
        """Every visible blob."""


@dataclass
class _LocalWriter:
    final_for: Callable[[Digest], Path]
    hasher: MultiHasher
    fh: BinaryIO
    _temp_path: Path
    _done: bool = False

    @property
    def temp_path(self) -> Path:
        return self._temp_path

    @property
    def size(self) -> int:
        return self.hasher.size

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.hasher.update(chunk)

    def commit(self) -> Digest:
        if self._done:
            raise RuntimeError("blob writer already finished")
        self.fh.flush()
        problems = self.hasher.mismatches()
        if problems:
            self.abort()
            raise VerificationError(problems)
        fd = self.fh.fileno()
        os.fsync(fd)
        if os.fstat(fd).st_nlink == 0:
            raise FileNotFoundError(
                errno.ENOENT, "temp file deleted while it was written", str(self._temp_path)
            )
        digest = self.hasher.sha256()
        final = self.final_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        # The temp file's lock is held until it has left tmp/ (see mirror_store.temps).
        if final.exists():  # write-once: identical content is already there
            self._temp_path.unlink(missing_ok=True)
        else:
            os.replace(self._temp_path, final)
            _fsync_dir(final.parent)
        self._done = True
        self.fh.close()
        return digest

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):  # unlink while still holding the lock
            self._temp_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.fh.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """BlobStore on a local filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs" / "sha256"
        self._tmp = root / "tmp"
        self._quarantine = root / "quarantine" / "sha256"
        for d in (self._blobs, self._tmp, self._quarantine):
            d.mkdir(parents=True, exist_ok=True)

    def _final(self, digest: Digest) -> Path:
        d = parse_digest(digest)
        return self._blobs / d[:2] / d[2:4] / d

    def writer(self, expected: dict[str, str], expected_size: int | None = None) -> BlobWriter:
        hasher = MultiHasher(dict(expected), expected_size)
        fd, path = temps.create_locked(self._tmp)
        fh = os.fdopen(fd, "wb")
        return _LocalWriter(self._final, hasher, fh, path)

    def blob_path(self, digest: Digest) -> Path:
        return self._final(digest)

    def path(self, digest: Digest) -> Path | None:
        p = self._final(digest)
        return p if p.is_file() else None

    def open(self, digest: Digest) -> BinaryIO:
        return self._final(digest).open("rb")

    def delete(self, digest: Digest) -> bool:
        p = self._final(digest)
        try:
            p.unlink()
        except FileNotFoundError:
            return False
        return True

    def quarantine(self, digest: Digest) -> Path:
        src = self._final(digest)
        dest = self._quarantine / digest
        os.replace(src, dest)
        return dest

    def digests(self) -> Iterator[Digest]:
        for p in sorted(self._blobs.glob("*/*/*")):
            if p.is_file() and is_digest(p.name):
                yield Digest(p.name)

    def temp_files(self) -> list[temps.TempFile]:
        """Every temp file, each marked live (a writer holds it) or abandoned (crash debris)."""
        return temps.scan(self._tmp)

    def clean_tmp(self, min_age: float = 0.0) -> list[temps.TempFile]:
        """Remove abandoned temp files (no live writer holds their lock) not modified within
        *min_age* seconds; a live download's temp file is never touched.  Return them."""
        return temps.remove_abandoned(self._tmp, min_age)
