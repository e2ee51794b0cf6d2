"""Records that answer "what did which client pull, and was it approved?".

SQLite tables (in the store's metadata database, via ``SqliteMetadata.add_schema``):

    served     one row per artifact served (first byte sent): who, what, which digest, under
               which policy revision and scan verdict — the source of the AI-BOM
    decisions  every decision event (also logged), for the admin API's recent-decisions view
    verdicts   scan verdict per sha256 and scanner version (a file is scanned once per digest)
    approvals  admin approvals / denials of a digest, with reason, who and when

All methods are async and run on the metadata store's worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mirror_store.metadata import SqliteMetadata

SCHEMA = """
CREATE TABLE IF NOT EXISTS served (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, client TEXT NOT NULL,
    ecosystem TEXT NOT NULL, project TEXT NOT NULL, version TEXT, filename TEXT NOT NULL,
    digest TEXT NOT NULL, upstream TEXT NOT NULL, policy_revision TEXT NOT NULL,
    rules TEXT NOT NULL, scan_verdict TEXT, extra TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS served_at ON served(at);
CREATE INDEX IF NOT EXISTS served_client ON served(client, at);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, request_id TEXT, client TEXT NOT NULL,
    ecosystem TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
    rules TEXT NOT NULL, reasons TEXT NOT NULL, policy_revision TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at);
CREATE TABLE IF NOT EXISTS verdicts (
    digest TEXT NOT NULL, scanner_version TEXT NOT NULL, format TEXT NOT NULL,
    findings TEXT NOT NULL, scanned_at REAL NOT NULL, PRIMARY KEY (digest, scanner_version));
CREATE TABLE IF NOT EXISTS approvals (
    digest TEXT PRIMARY KEY, verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
    reason TEXT NOT NULL, by TEXT NOT NULL, at REAL NOT NULL);
"""
DECISIONS_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class Served:
    client: str
    ecosystem: str  # "pypi" | "hf"
    project: str  # canonical project name, or "<type>s/<repo id>" for the hub
    version: str | None  # package version, or the hub commit sha
    filename: str  # file name, or path inside the repo
    digest: str  # sha256
    upstream: str
    policy_revision: str
    rules: tuple[str, ...] = ()  # rule ids that were evaluated as findings but not enforced
    scan_verdict: str | None = None  # "clean" | "approved" | None (not scanned)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"repo_type": "model"}
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    digest: str
    scanner_version: str
    format: str
    findings: tuple[dict[str, str], ...]  # [{rule, message, location}]
    scanned_at: float

    @property
    def clean(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class Approval:
    digest: str
    verdict: str  # "approve" | "deny"
    reason: str
    by: str
    at: float


class TrustRecords:
    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA, digest_columns=("served.digest",))

    async def record_served(self, s: Served) -> None:
        row = (
            s.at or time.time(),
            s.client,
            s.ecosystem,
            s.project,
            s.version,
            s.filename,
            s.digest,
            s.upstream,
            s.policy_revision,
            json.dumps(list(s.rules)),
            s.scan_verdict,
            json.dumps(s.extra),
        )
        await self._meta.run(
            lambda c: c.execute(
                "INSERT INTO served (at, client, ecosystem, project, version, filename, digest,"
                " upstream, policy_revision, rules, scan_verdict, extra)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
        )

    async def served(
        self, client: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[Served]:
        where: list[str] = ["1=1"]
        args: list[str | float] = []
        if client is not None:
            where.append("client=?")
            args.append(client)
        if since is not None:
            where.append("at>=?")
            args.append(since)
        if until is not None:
            where.append("at<?")
            args.append(until)
        sql = (
            "SELECT client, ecosystem, project, version, filename, digest, upstream,"  # noqa: S608 - fixed conditions, bound values
            " policy_revision, rules, scan_verdict, extra, at FROM served WHERE "
            + " AND ".join(where)
            + " ORDER BY at"
        )

        def q(c: sqlite3.Connection) -> list[Served]:
            return [
                Served(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    tuple(json.loads(r[8])),
                    r[9],
                    json.loads(r[10]),
                    r[11],
                )
                for r in c.execute(sql, args)
            ]

        return await self._meta.run(q)

    async def record_decision(self, event: dict[str, Any]) -> None:
        row = (
            time.time(),
            event.get("request_id"),
            event.get("client", ""),
            event.get("ecosystem", ""),
            event.get("action", ""),
            event.get("target", ""),
            event.get("outcome", ""),
            json.dumps(event.get("rules", [])),
            json.dumps(event.get("reasons", [])),
            event.get("policy_revision", ""),
        )

        def q(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "INSERT INTO decisions (at, request_id, client, ecosystem, action, target,"
                " outcome, rules, reasons, policy_revision) VALUES (?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            if cur.lastrowid and cur.lastrowid % 1000 == 0:
                c.execute("DELETE FROM decisions WHERE id <= ?", (cur.lastrowid - DECISIONS_KEPT,))

        await self._meta.run(q)

    async def decisions(
        self,
        *,
        client: str | None = None,
        rule: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        where: list[str] = ["1=1"]
        args: list[str | int] = []
        for col, value in (("client", client), ("outcome", outcome)):
            if value is not None:
                where.append(f"{col}=?")
                args.append(value)
        if rule is not None:
            where.append("rules LIKE ?")
            args.append(f'%"{rule}"%')
        sql = (
            "SELECT at, request_id, client, ecosystem, action, target, outcome, rules,"  # noqa: S608 - fixed conditions, bound values
            " reasons, policy_revision FROM decisions WHERE "
            + " AND ".join(where)
            + " ORDER BY id DESC LIMIT ?"
        )
        args.append(max(1, min(limit, 1000)))
        keys = (
            "at",
            "request_id",
            "client",
            "ecosystem",
            "action",
            "target",
            "outcome",
            "rules",
            "reasons",
            "policy_revision",
        )

        def q(c: sqlite3.Connection) -> list[dict[str, Any]]:
            out = []
            for r in c.execute(sql, args):
                d = dict(zip(keys, r, strict=True))
                d["rules"], d["reasons"] = json.loads(d["rules"]), json.loads(d["reasons"])
                out.append(d)
            return out

        return await self._meta.run(q)

    async def verdict(self, digest: str, scanner_version: str) -> Verdict | None:
        def q(c: sqlite3.Connection) -> Verdict | None:
            r = c.execute(
                "SELECT format, findings, scanned_at FROM verdicts WHERE digest=? AND"
                " scanner_version=?",
                (digest, scanner_version),
            ).fetchone()
            return (
                Verdict(digest, scanner_version, r[0], tuple(json.loads(r[1])), r[2]) if r else None
            )

        return await self._meta.run(q)

    async def record_verdict(self, v: Verdict) -> None:
        row = (v.digest, v.scanner_version, v.format, json.dumps(list(v.findings)), v.scanned_at)
        await self._meta.run(
            lambda c: c.execute("INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?)", row)
        )

    async def quarantined(self) -> list[tuple[Verdict, Approval | None]]:
        """Digests with findings (latest scanner version first), with any admin decision."""

        def q(c: sqlite3.Connection) -> list[tuple[Verdict, Approval | None]]:
            rows = c.execute(
                "SELECT v.digest, v.scanner_version, v.format, v.findings, v.scanned_at,"
                " a.verdict, a.reason, a.by, a.at FROM verdicts v LEFT JOIN approvals a"
                " ON a.digest = v.digest WHERE v.findings != '[]' ORDER BY v.scanned_at DESC"
            )
            return [
                (
                    Verdict(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4]),
                    Approval(r[0], r[5], r[6], r[7], r[8]) if r[5] else None,
                )
                for r in rows
            ]

        return await self._meta.run(q)

    async def approval(self, digest: str) -> Approval | None:
        def q(c: sqlite3.Connection) -> Approval | None:
            r = c.execute(
                "SELECT verdict, reason, by, at FROM approvals WHERE digest=?", (digest,)
            ).fetchone()
            return Approval(digest, r[0], r[1], r[2], r[3]) if r else None

        return await self._meta.run(q)

    async def set_approval(self, digest: str, verdict: str, reason: str, by: str) -> Approval:
        if verdict not in ("approve", "deny"):
            raise ValueError("verdict must be 'approve' or 'deny'")
        if not reason.strip():
            raise ValueError("an approval needs a reason")
        a = Approval(digest, verdict, reason.strip(), by, time.time())
        await self._meta.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO approvals VALUES (?,?,?,?,?)", tuple(asdict(a).values())
            )
        )
        return a
