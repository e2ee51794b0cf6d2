"""Metadata index: what each cached page and file is, which blob holds it, and when it was fetched.

SQLite in WAL mode behind the MetadataStore protocol.  All SQL runs on one dedicated worker
thread (one connection, serialised), so callers on the event loop only await futures.

Tables:
    pages(ecosystem, name)            last good upstream page body, validators, fetch time
    files(ecosystem, name, filename)  stored files: upstream URL, verified hashes, size, digest
    quarantine(digest)                blobs fsck moved aside, with the reason
    tainted_transfers(key)            how far unverified bytes of a content may have reached a
                                      client (a failed fill's readers); see mirror_store.fill
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from .digest import Digest

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, upstream TEXT NOT NULL, body TEXT NOT NULL,
    etag TEXT, last_modified TEXT, fetched_at REAL NOT NULL,
    PRIMARY KEY (ecosystem, name));
CREATE TABLE IF NOT EXISTS files (
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, filename TEXT NOT NULL, url TEXT NOT NULL,
    hashes TEXT NOT NULL, size INTEGER, digest TEXT, stored_at REAL,
    PRIMARY KEY (ecosystem, name, filename));
CREATE INDEX IF NOT EXISTS files_digest ON files(digest);
CREATE TABLE IF NOT EXISTS quarantine (
    digest TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tainted_transfers (
    key TEXT PRIMARY KEY, upto INTEGER NOT NULL, at REAL NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class PageRecord:
    upstream: str
    body: str  # the parsed page, serialised by the ecosystem's wire module
    etag: str | None
    last_modified: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class FileRecord:
    filename: str
    url: str  # absolute upstream URL
    hashes: dict[str, str]
    size: int | None = None
    digest: Digest | None = None  # set once the verified bytes are in the blob store


class MetadataStore(Protocol):
    """Mutable facts about mirrored content.  Every method may raise sqlite3.Error."""

    async def get_page(self, ecosystem: str, name: str) -> PageRecord | None: ...
    async def put_page(self, ecosystem: str, name: str, page: PageRecord) -> None: ...
    async def touch_page(self, ecosystem: str, name: str, fetched_at: float) -> None: ...
    async def page_names(self, ecosystem: str) -> list[str]: ...
    async def get_file(self, ecosystem: str, name: str, filename: str) -> FileRecord | None: ...
    async def upsert_file(self, ecosystem: str, name: str, record: FileRecord) -> None: ...
    async def files_with_digest(self, ecosystem: str, name: str) -> dict[str, Digest]: ...
    async def referenced_digests(self) -> set[str]: ...
    async def record_quarantine(self, digest: Digest, reason: str) -> None: ...
    async def record_taint(self, key: str, upto: int) -> None: ...
    async def taints(self) -> dict[str, int]: ...
    async def close(self) -> None: ...


class SqliteMetadata:
    """MetadataStore on SQLite (WAL), one connection on one worker thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airlock-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._extra_refs: list[str] = []

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run *fn* with the connection on the SQLite worker thread (for other modules' tables)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._connect()))

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For CLI commands without an event loop."""
        return self._pool.submit(lambda: fn(self._connect())).result()

    def add_schema(self, sql: str, digest_columns: Iterable[str] = ()) -> None:
        """Let another ecosystem add tables; *digest_columns* ("table.column") count for gc."""
        self.run_sync(lambda c: c.executescript(sql))
        self._extra_refs.extend(digest_columns)

    async def get_page(self, ecosystem: str, name: str) -> PageRecord | None:
        def q(c: sqlite3.Connection) -> PageRecord | None:
            row = c.execute(
                "SELECT upstream, body, etag, last_modified, fetched_at FROM pages"
                " WHERE ecosystem=? AND name=?",
                (ecosystem, name),
            ).fetchone()
            return PageRecord(*row) if row else None

        return await self.run(q)

    async def put_page(self, ecosystem: str, name: str, page: PageRecord) -> None:
        row = (
            ecosystem,
            name,
            page.upstream,
            page.body,
            page.etag,
            page.last_modified,
            page.fetched_at,
        )
        await self.run(
            lambda c: c.execute("INSERT OR REPLACE INTO pages VALUES (?,?,?,?,?,?,?)", row)
        )

    async def touch_page(self, ecosystem: str, name: str, fetched_at: float) -> None:
        await self.run(
            lambda c: c.execute(
                "UPDATE pages SET fetched_at=? WHERE ecosystem=? AND name=?",
                (fetched_at, ecosystem, name),
            )
        )

    async def page_names(self, ecosystem: str) -> list[str]:
        return await self.run(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT name FROM pages WHERE ecosystem=? ORDER BY name", (ecosystem,)
                )
            ]
        )

    async def get_file(self, ecosystem: str, name: str, filename: str) -> FileRecord | None:
        def q(c: sqlite3.Connection) -> FileRecord | None:
            row = c.execute(
                "SELECT filename, url, hashes, size, digest FROM files"
                " WHERE ecosystem=? AND name=? AND filename=?",
                (ecosystem, name, filename),
            ).fetchone()
            if not row:
                return None
            return FileRecord(row[0], row[1], json.loads(row[2]), row[3], row[4])

        return await self.run(q)

    async def upsert_file(self, ecosystem: str, name: str, record: FileRecord) -> None:
        row = (
            ecosystem,
            name,
            record.filename,
            record.url,
            json.dumps(record.hashes),
            record.size,
            record.digest,
            time.time() if record.digest else None,
        )
        await self.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO files (ecosystem, name, filename, url, hashes, size,"
                " digest, stored_at) VALUES (?,?,?,?,?,?,?,?)",
                row,
            )
        )

    async def files_with_digest(self, ecosystem: str, name: str) -> dict[str, Digest]:
        return await self.run(
            lambda c: {
                r[0]: Digest(r[1])
                for r in c.execute(
                    "SELECT filename, digest FROM files WHERE ecosystem=? AND name=?"
                    " AND digest IS NOT NULL",
                    (ecosystem, name),
                )
            }
        )

    def _referenced(self, c: sqlite3.Connection) -> set[str]:
        refs = {r[0] for r in c.execute("SELECT digest FROM files WHERE digest IS NOT NULL")}
        for col in self._extra_refs:
            table, column = col.split(".")
            refs |= {
                r[0]
                for r in c.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608 - names come from code, not input
            }
        return refs

    async def referenced_digests(self) -> set[str]:
        return await self.run(self._referenced)

    async def record_quarantine(self, digest: Digest, reason: str) -> None:
        def q(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN")
                c.execute(
                    "INSERT OR REPLACE INTO quarantine VALUES (?,?,?)",
                    (digest, reason, time.time()),
                )
                # A quarantined blob is no longer stored: the next request re-fetches it.
                c.execute("UPDATE files SET digest=NULL, stored_at=NULL WHERE digest=?", (digest,))

        await self.run(q)

    async def record_taint(self, key: str, upto: int) -> None:
        await self.run(
            lambda c: c.execute(
                "INSERT INTO tainted_transfers VALUES (?,?,?) ON CONFLICT(key)"
                " DO UPDATE SET upto=max(upto, excluded.upto), at=excluded.at",
                (key, upto, time.time()),
            )
        )

    async def taints(self) -> dict[str, int]:
        return await self.run(
            lambda c: dict(c.execute("SELECT key, upto FROM tainted_transfers").fetchall())
        )

    async def close(self) -> None:
        def q(c: sqlite3.Connection) -> None:
            c.close()

        if self._conn is not None:
            await self.run(q)
            self._conn = None
        self._pool.shutdown(wait=True)
