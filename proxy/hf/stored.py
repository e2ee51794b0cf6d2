"""SQLite tables of the Hub side, added to the shared metadata store (``add_schema``).

Tables::

    hf_info(repo_type, repo_id, revision, query, scope)   last good repo-info JSON + fetch time
    hf_pages(repo_type, repo_id, scope, key)              tree / paths-info pages of a commit
    hf_files(repo_type, repo_id, commit, path)            size + hashes per file; digest once stored
    hf_identity(repo_type, repo_id)                       see identity.py
    hf_commits(repo_type, repo_id, commit)                commits vouched for by an identity check

``scope`` is "" for what anyone may see (fetched without a client token, or public), else a
hash of the client token that fetched it, so a private repo's data never reaches other users.
Every method here runs SQL on the metadata store's worker thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from mirror_store.digest import Digest
from mirror_store.metadata import SqliteMetadata

from .model import FileMeta, RepoRef

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS hf_info (
    repo_type TEXT NOT NULL, repo_id TEXT NOT NULL, revision TEXT NOT NULL, query TEXT NOT NULL,
    scope TEXT NOT NULL, body BLOB NOT NULL, fetched_at REAL NOT NULL,
    PRIMARY KEY (repo_type, repo_id, revision, query, scope));
CREATE TABLE IF NOT EXISTS hf_pages (
    repo_type TEXT NOT NULL, repo_id TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL,
    body BLOB NOT NULL, link TEXT, fetched_at REAL NOT NULL,
    PRIMARY KEY (repo_type, repo_id, scope, key));
CREATE TABLE IF NOT EXISTS hf_files (
    repo_type TEXT NOT NULL, repo_id TEXT NOT NULL, commit_id TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL, lfs INTEGER NOT NULL, sha256 TEXT, blob_sha1 TEXT,
    digest TEXT, stored_at REAL,
    PRIMARY KEY (repo_type, repo_id, commit_id, path));
CREATE INDEX IF NOT EXISTS hf_files_sha256 ON hf_files(sha256);
CREATE INDEX IF NOT EXISTS hf_files_blob_sha1 ON hf_files(blob_sha1);
CREATE INDEX IF NOT EXISTS hf_files_digest ON hf_files(digest);
CREATE TABLE IF NOT EXISTS hf_identity (
    repo_type TEXT NOT NULL, repo_id TEXT NOT NULL, object_id TEXT, author TEXT,
    created_at TEXT, canonical TEXT NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (repo_type, repo_id));
CREATE TABLE IF NOT EXISTS hf_commits (
    repo_type TEXT NOT NULL, repo_id TEXT NOT NULL, commit_id TEXT NOT NULL,
    seen_at REAL NOT NULL, PRIMARY KEY (repo_type, repo_id, commit_id));
"""
DIGEST_COLUMNS = ("hf_files.digest",)


@dataclass(frozen=True, slots=True)
class StoredDoc:
    body: bytes
    link: str | None  # upstream-relative next-page link (pages only)
    fetched_at: float


class HfTables:
    """Typed access to the hf_* tables."""

    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta

    @staticmethod
    async def install(meta: SqliteMetadata) -> HfTables:
        await asyncio.to_thread(meta.add_schema, SCHEMA, DIGEST_COLUMNS)
        return HfTables(meta)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._meta.run(fn)

    # ---- repo info -----------------------------------------------------------------------------
    async def get_info(
        self, ref: RepoRef, revision: str, query: str, scope: str
    ) -> StoredDoc | None:
        def q(c: sqlite3.Connection) -> StoredDoc | None:
            row = c.execute(
                "SELECT body, fetched_at FROM hf_info WHERE repo_type=? AND repo_id=?"
                " AND revision=? AND query=? AND scope=?",
                (ref.repo_type, ref.repo_id, revision, query, scope),
            ).fetchone()
            return StoredDoc(bytes(row[0]), None, row[1]) if row else None

        return await self.run(q)

    async def put_info(
        self, ref: RepoRef, revision: str, query: str, scope: str, body: bytes, at: float
    ) -> None:
        row = (ref.repo_type, ref.repo_id, revision, query, scope, body, at)
        await self.run(
            lambda c: c.execute("INSERT OR REPLACE INTO hf_info VALUES (?,?,?,?,?,?,?)", row)
        )

    # ---- pages (tree, paths-info) of a commit ---------------------------------------------------
    async def get_page(self, ref: RepoRef, scope: str, key: str) -> StoredDoc | None:
        def q(c: sqlite3.Connection) -> StoredDoc | None:
            row = c.execute(
                "SELECT body, link, fetched_at FROM hf_pages WHERE repo_type=? AND repo_id=?"
                " AND scope=? AND key=?",
                (ref.repo_type, ref.repo_id, scope, key),
            ).fetchone()
            return StoredDoc(bytes(row[0]), row[1], row[2]) if row else None

        return await self.run(q)

    async def put_page(
        self, ref: RepoRef, scope: str, key: str, body: bytes, link: str | None
    ) -> None:
        row = (ref.repo_type, ref.repo_id, scope, key, body, link, time.time())
        await self.run(
            lambda c: c.execute("INSERT OR REPLACE INTO hf_pages VALUES (?,?,?,?,?,?,?)", row)
        )

    # ---- files -----------------------------------------------------------------------------------
    async def get_file(self, ref: RepoRef, commit: str, path: str) -> FileMeta | None:
        def q(c: sqlite3.Connection) -> FileMeta | None:
            row = c.execute(
                "SELECT size, lfs, sha256, blob_sha1 FROM hf_files WHERE repo_type=?"
                " AND repo_id=? AND commit_id=? AND path=?",
                (ref.repo_type, ref.repo_id, commit, path),
            ).fetchone()
            return FileMeta(path, row[0], bool(row[1]), row[2], row[3]) if row else None

        return await self.run(q)

    async def add_files(self, ref: RepoRef, commit: str, metas: Iterable[FileMeta]) -> None:
        """Record file facts of a commit; facts already recorded are never changed (a commit's
        content is what we first saw for it)."""
        rows = [
            (ref.repo_type, ref.repo_id, commit, m.path, m.size, int(m.lfs), m.sha256, m.blob_sha1)
            for m in metas
        ]
        if not rows:
            return

        def q(c: sqlite3.Connection) -> None:
            c.executemany(
                "INSERT OR IGNORE INTO hf_files (repo_type, repo_id, commit_id, path, size, lfs,"
                " sha256, blob_sha1) VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )

        await self.run(q)

    async def stored_digest(self, meta: FileMeta) -> Digest | None:
        """The sha256 of verified, accepted content with these hashes (any repo), if any."""

        def q(c: sqlite3.Connection) -> Digest | None:
            if meta.lfs:
                row = c.execute(
                    "SELECT digest FROM hf_files WHERE sha256=? AND size=? AND digest IS NOT NULL"
                    " LIMIT 1",
                    (meta.sha256, meta.size),
                ).fetchone()
            else:
                row = c.execute(
                    "SELECT digest FROM hf_files WHERE blob_sha1=? AND size=?"
                    " AND digest IS NOT NULL LIMIT 1",
                    (meta.blob_sha1, meta.size),
                ).fetchone()
            return Digest(row[0]) if row else None

        return await self.run(q)

    async def set_digest(self, ref: RepoRef, commit: str, meta: FileMeta, digest: Digest) -> None:
        def q(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR IGNORE INTO hf_files (repo_type, repo_id, commit_id, path, size, lfs,"
                " sha256, blob_sha1) VALUES (?,?,?,?,?,?,?,?)",
                (
                    ref.repo_type,
                    ref.repo_id,
                    commit,
                    meta.path,
                    meta.size,
                    int(meta.lfs),
                    meta.sha256,
                    meta.blob_sha1,
                ),
            )
            c.execute(
                "UPDATE hf_files SET digest=?, stored_at=? WHERE repo_type=? AND repo_id=?"
                " AND commit_id=? AND path=?",
                (digest, time.time(), ref.repo_type, ref.repo_id, commit, meta.path),
            )

        await self.run(q)

    async def forget_digest(self, digest: Digest) -> None:
        """The blob is gone from the store (quarantined or collected): fetch it again."""
        await self.run(
            lambda c: c.execute(
                "UPDATE hf_files SET digest=NULL, stored_at=NULL WHERE digest=?", (digest,)
            )
        )
