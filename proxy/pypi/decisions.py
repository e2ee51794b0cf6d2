"""Page decisions kept across restarts.

Deciding a large project page costs the embedded engine ~0.2 ms per file (a popular project
lists thousands).  Decisions are cached in memory by page content, policy revision and client
groups; this store keeps them in the metadata database too, so a restarted proxy serves its
first requests from the last decision (refreshed in the background once it is older than the
re-evaluation interval, exactly as a decision cached in memory is).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

from mirror_store.metadata import SqliteMetadata

from ..decision import Decision

SCHEMA = """
CREATE TABLE IF NOT EXISTS pypi_page_decisions (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, decided_at REAL NOT NULL, decision TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pypi_page_decisions_name ON pypi_page_decisions(name);
"""
KEEP_SECONDS = 7 * 86400  # older decisions of the same project are pruned when a new one lands


def key_digest(key: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()


class PageDecisionStore:
    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA)

    async def get(self, key: str) -> tuple[float, Decision] | None:
        def q(c: sqlite3.Connection) -> tuple[float, str] | None:
            row = c.execute(
                "SELECT decided_at, decision FROM pypi_page_decisions WHERE key=?", (key,)
            ).fetchone()
            return (row[0], row[1]) if row else None

        row = await self._meta.run(q)
        if row is None:
            return None
        try:
            return row[0], Decision.from_json(json.loads(row[1]))
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable record is simply decided again

    async def put(self, key: str, name: str, decision: Decision) -> None:
        now = time.time()
        body = json.dumps(decision.to_json(), separators=(",", ":"))

        def q(c: sqlite3.Connection) -> None:
            with c:
                c.execute("BEGIN")
                c.execute(
                    "INSERT OR REPLACE INTO pypi_page_decisions VALUES (?,?,?,?)",
                    (key, name, now, body),
                )
                c.execute(
                    "DELETE FROM pypi_page_decisions WHERE name=? AND decided_at<?",
                    (name, now - KEEP_SECONDS),
                )

        await self._meta.run(q)
