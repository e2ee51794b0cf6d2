"""Store maintenance for the CLI: ``fsck`` (re-hash, quarantine) and ``gc`` (unreferenced blobs)."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from pathlib import Path

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.metadata import SqliteMetadata

CHUNK = 1024 * 1024


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsck(root: Path, *, dry_run: bool) -> int:
    blobs = LocalBlobStore(root)
    meta = SqliteMetadata(root / "metadata.sqlite3")
    checked = bad = 0
    try:
        for digest in blobs.digests():
            path = blobs.path(digest)
            if path is None:
                continue
            checked += 1
            actual = _sha256(path)
            if actual == digest:
                continue
            bad += 1
            reason = f"content hashes to {actual}"
            if dry_run:
                print(f"BAD {digest}: {reason}")
                continue
            dest = blobs.quarantine(digest)
            asyncio.run(meta.record_quarantine(Digest(digest), reason))
            print(f"QUARANTINED {digest}: {reason} -> {dest}")
    finally:
        asyncio.run(meta.close())
    print(
        f"fsck: {checked} blobs checked, {bad} bad" + (" (dry run)" if dry_run and bad else ""),
        file=sys.stderr,
    )
    return 1 if bad else 0


def gc(root: Path, *, dry_run: bool, min_age: float = 3600.0) -> int:
    """Remove unreferenced blobs older than *min_age* seconds (younger ones may belong to a
    download whose metadata record is being written right now)."""
    blobs = LocalBlobStore(root)
    meta = SqliteMetadata(root / "metadata.sqlite3")
    try:
        referenced = asyncio.run(meta.referenced_digests())
    finally:
        asyncio.run(meta.close())
    removed = freed = 0
    cutoff = time.time() - min_age
    for digest in blobs.digests():
        if digest in referenced:
            continue
        path = blobs.path(digest)
        if path is None:
            continue
        st = path.stat()
        if st.st_mtime > cutoff:
            continue
        size = st.st_size
        if not dry_run:
            blobs.delete(digest)
        removed += 1
        freed += size
        print(f"{'would remove' if dry_run else 'removed'} {digest} ({size} bytes)")
    temps = 0 if dry_run else blobs.clean_tmp()
    print(
        f"gc: {removed} unreferenced blobs, {freed} bytes"
        f"{' (dry run)' if dry_run else ' freed'}; {temps} stale temp files removed",
        file=sys.stderr,
    )
    return 0
