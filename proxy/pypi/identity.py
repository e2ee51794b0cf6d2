"""Project identity: what a project looked like when first seen, to catch revival hijacks.

When a project is deleted and its name re-registered (a "revival" or namespace reuse), the new
owner's history starts later and the old files are gone.  The first time a project page is
fetched we record its earliest upload time and its oldest files; later pages are compared:

* ``restarted-later``: the earliest upload is now more than a day later than recorded;
* ``history-vanished``: at least half of the recorded oldest files are no longer listed.

The findings are facts; the policy decides (by default: quarantine the project).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from mirror_store.metadata import SqliteMetadata

from .filefacts import upload_ns
from .model import ProjectDetail

SCHEMA = """
CREATE TABLE IF NOT EXISTS pypi_identity (
    name TEXT PRIMARY KEY, first_seen REAL NOT NULL, earliest_ns INTEGER,
    oldest_files TEXT NOT NULL);
"""
OLDEST_KEPT = 20
TOLERANCE_NS = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class Identity:
    first_seen: float
    earliest_ns: int | None
    oldest_files: tuple[str, ...]


def _summarise(detail: ProjectDetail) -> tuple[int | None, tuple[str, ...]]:
    dated = sorted(
        (ns, f.filename) for f in detail.files if f.upload_time and (ns := upload_ns(f.upload_time))
    )
    earliest = dated[0][0] if dated else None
    return earliest, tuple(name for _, name in dated[:OLDEST_KEPT])


class IdentityStore:
    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA)

    async def check(self, name: str, detail: ProjectDetail) -> list[dict[str, str]]:
        """Record the identity on first sight; return findings against the record."""
        earliest, oldest = _summarise(detail)

        def q(c: sqlite3.Connection) -> Identity | None:
            row = c.execute(
                "SELECT first_seen, earliest_ns, oldest_files FROM pypi_identity WHERE name=?",
                (name,),
            ).fetchone()
            if row is None:
                if earliest is not None:
                    c.execute(
                        "INSERT INTO pypi_identity VALUES (?,?,?,?)",
                        (name, time.time(), earliest, json.dumps(list(oldest))),
                    )
                return None
            return Identity(row[0], row[1], tuple(json.loads(row[2])))

        recorded = await self._meta.run(q)
        if recorded is None:
            return []
        findings = []
        if recorded.earliest_ns is not None and (
            earliest is None or earliest > recorded.earliest_ns + TOLERANCE_NS
        ):
            findings.append(
                {
                    "kind": "restarted-later",
                    "message": f"its history now starts later than when airlock first saw it "
                    f"(first upload recorded {_day(recorded.earliest_ns)}, now "
                    f"{_day(earliest) if earliest else 'no dated files'})",
                }
            )
        listed = {f.filename for f in detail.files}
        gone = [f for f in recorded.oldest_files if f not in listed]
        if recorded.oldest_files and len(gone) * 2 >= len(recorded.oldest_files):
            findings.append(
                {
                    "kind": "history-vanished",
                    "message": f"{len(gone)} of its {len(recorded.oldest_files)} oldest files "
                    f"recorded by airlock are gone (e.g. {gone[0]})",
                }
            )
        return findings


def _day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns / 1e9))
