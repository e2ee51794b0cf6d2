"""Store maintenance for the CLI: ``fsck`` (re-hash, quarantine) and ``gc`` (unreferenced blobs).

Both also look at ``tmp/``: a temp file no live process holds (``mirror_store.temps``) was
left by a server that died mid-download; both report those with their sizes and ``gc``
removes them.  Neither takes the store lock, so both run safely next to a live server: the
temp files of its downloads in progress are locked and left alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from pathlib import Path

from mirror_store.blobs import LocalBlobStore
from mirror_store.digest import Digest
from mirror_store.metadata import SqliteMetadata
from mirror_store.temps import TempFile, is_old

from .progress import Progress

CHUNK = 1024 * 1024


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 * 1024 else f"{n} bytes, {n / (1024 * 1024):.1f} MiB"


def _list(temps: list[TempFile], what: str, now: float) -> None:
    for t in temps:
        print(f"{what} tmp/{t.path.name} ({_size(t.size)}, modified {now - t.mtime:.0f} s ago)")


def _temps_summary(temps: list[TempFile]) -> str:
    return f"{len(temps)} abandoned temp files ({_size(sum(t.size for t in temps))})"


def fsck(root: Path, *, dry_run: bool, verbose: bool = False) -> int:
    blobs = LocalBlobStore(root)
    meta = SqliteMetadata(root / "metadata.sqlite3")
    checked = bad = 0
    digests = list(blobs.digests())
    try:
        with Progress("fsck", len(digests), unit="blobs checked") as progress:
            for digest in progress.track(digests):
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
                    progress.echo(f"BAD {digest}: {reason}", sys.stdout)
                    continue
                dest = blobs.quarantine(digest)
                asyncio.run(meta.record_quarantine(Digest(digest), reason))
                progress.echo(f"QUARANTINED {digest}: {reason} -> {dest}", sys.stdout)
    finally:
        asyncio.run(meta.close())
    temps = blobs.temp_files()
    abandoned = [t for t in temps if not t.live]
    if verbose:
        now = time.time()
        _list(abandoned, "ABANDONED", now)
        _list([t for t in temps if t.live], "IN PROGRESS", now)
    leftovers = ""
    if abandoned:
        leftovers = f"; {_temps_summary(abandoned)} left by a stopped server (airlock store gc)"
    print(
        f"fsck: {checked} blobs checked, {bad} bad"
        + (" (dry run)" if dry_run and bad else "")
        + leftovers
        + f"; {len(temps) - len(abandoned)} downloads in progress",
        file=sys.stderr,
    )
    return 1 if bad else 0


def gc(root: Path, *, dry_run: bool, min_age: float = 3600.0, verbose: bool = False) -> int:
    """Remove unreferenced blobs older than *min_age* seconds (younger ones may belong to a
    download whose metadata record is being written right now), and abandoned temp files not
    modified within *min_age*; a live download's temp file is never touched."""
    blobs = LocalBlobStore(root)
    meta = SqliteMetadata(root / "metadata.sqlite3")
    try:
        referenced = asyncio.run(meta.referenced_digests())
    finally:
        asyncio.run(meta.close())
    removed = freed = 0
    cutoff = time.time() - min_age
    digests = list(blobs.digests())
    with Progress("gc", len(digests), unit="blobs looked at") as progress:
        for digest in progress.track(digests):
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
            line = f"{'would remove' if dry_run else 'removed'} {digest} ({size} bytes)"
            progress.echo(line, sys.stdout)
    now = time.time()
    temps = blobs.temp_files()
    live = sum(t.live for t in temps)
    if dry_run:
        gone = [t for t in temps if not t.live and is_old(t, min_age, now)]
    else:
        gone = blobs.clean_tmp(min_age)
    young = sum(not t.live and not is_old(t, min_age, now) for t in temps)
    if verbose:
        _list(gone, "would remove" if dry_run else "removed", now)
    print(
        f"gc: {removed} unreferenced blobs, {freed} bytes"
        f"{' (dry run)' if dry_run else ' freed'}; {_temps_summary(gone)}"
        f"{' to remove (dry run)' if dry_run else ' removed'}"
        f"{f', {young} younger than --min-age kept' if young else ''}"
        f"; {live} downloads in progress left alone",
        file=sys.stderr,
    )
    return 0
