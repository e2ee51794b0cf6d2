"""Signed approvals: an in-toto Statement v1 in a DSSE envelope, signed with the proxy's key.

The first time a digest is served (under a given file name) by a given policy revision, the
proxy signs a statement saying so and keeps the envelope (table ``attestations`` in the
store's metadata database).  One signature per (digest, policy revision, name): repeated
downloads cost a set lookup.

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "tiny_lib-1.0-py3-none-any.whl", "digest": {"sha256": "…"}}],
     "predicateType": "https://airlock.dev/attestation/approval/v1",
     "predicate": {"decision": "allow", "ruleIds": [], "policyRevision": "…",
                   "scanVerdict": null, "upstream": "pypi", "ecosystem": "pypi",
                   "project": "tiny-lib", "version": "1.0", "time": "2026-…Z",
                   "approver": {"name": "airlock", "version": "0.1.0", "keyid": "…"}}}

The predicate type is airlock's own, stable URI (it names a format; nothing is served there).
For the hub, ``version`` is absent and ``commit`` and ``repoType`` are set; the subject name
is the file's path inside the repository.  ``decision`` is "allow", or "monitor-deny" when the
policy would have denied the file but runs in monitor mode (``airlock verify`` rejects that).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from mirror_store.metadata import SqliteMetadata

from .. import __version__
from .dsse import sign
from .keys import SigningKey
from .records import Served

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://airlock.dev/attestation/approval/v1"
APPROVED = "allow"
REMEMBERED = 65536

SCHEMA = """
CREATE TABLE IF NOT EXISTS attestations (
    digest TEXT NOT NULL, policy_revision TEXT NOT NULL, name TEXT NOT NULL, at REAL NOT NULL,
    decision TEXT NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (digest, policy_revision, name));
CREATE INDEX IF NOT EXISTS attestations_latest ON attestations(digest, at);
"""


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def statement(s: Served, decision: str, keyid: str = "") -> dict[str, Any]:
    """The in-toto Statement v1 approving what *s* served."""
    predicate: dict[str, Any] = {
        "decision": decision,
        "ruleIds": list(s.rules),
        "policyRevision": s.policy_revision,
        "scanVerdict": s.scan_verdict,
        "upstream": s.upstream,
        "ecosystem": s.ecosystem,
        "project": s.project,
        "time": rfc3339(s.at or time.time()),
        "approver": {"name": "airlock", "version": __version__, "keyid": keyid},
    }
    if s.ecosystem == "hf":
        predicate["commit"] = s.version
        predicate["repoType"] = s.extra.get("repo_type")
    else:
        predicate["version"] = s.version
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.filename, "digest": {"sha256": s.digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def encode(statement_: dict[str, Any]) -> bytes:
    return json.dumps(statement_, sort_keys=True, separators=(",", ":")).encode()


class AttestationStore:
    """Envelopes by (digest, policy revision, name).  The constructor runs sync SQLite."""

    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA)  # not a gc reference: an approval outlives its blob

    async def exists(self, digest: str, policy_revision: str, name: str) -> bool:
        def q(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT 1 FROM attestations WHERE digest=? AND policy_revision=? AND name=?",
                (digest, policy_revision, name),
            ).fetchone()
            return row is not None

        return await self._meta.run(q)

    async def add(
        self,
        digest: str,
        policy_revision: str,
        name: str,
        at: float,
        decision: str,
        envelope: dict[str, Any],
    ) -> None:
        row = (digest, policy_revision, name, at, decision, json.dumps(envelope))
        await self._meta.run(
            lambda c: c.execute("INSERT OR IGNORE INTO attestations VALUES (?,?,?,?,?,?)", row)
        )

    async def latest(self, digest: str, name: str | None = None) -> dict[str, Any] | None:
        """The newest envelope for *digest* (for that subject name, when given)."""

        def q(c: sqlite3.Connection) -> str | None:
            if name is None:
                row = c.execute(
                    "SELECT envelope FROM attestations WHERE digest=? ORDER BY at DESC LIMIT 1",
                    (digest,),
                ).fetchone()
            else:
                row = c.execute(
                    "SELECT envelope FROM attestations WHERE digest=? AND name=?"
                    " ORDER BY at DESC LIMIT 1",
                    (digest, name),
                ).fetchone()
            return str(row[0]) if row else None

        raw = await self._meta.run(q)
        return json.loads(raw) if raw is not None else None


class Attestor:
    """Signs once per (digest, policy revision, name); remembers what it signed."""

    def __init__(self, key: SigningKey, store: AttestationStore) -> None:
        self.key = key
        self.store = store
        self._done: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self.signed = 0  # envelopes made by this process (tests, metrics)

    def _remember(self, k: tuple[str, str, str]) -> None:
        self._done[k] = None
        while len(self._done) > REMEMBERED:
            self._done.popitem(last=False)

    async def attest(self, s: Served, decision: str) -> bool:
        """Sign and store the approval of what *s* served, unless already done; True if new."""
        k = (s.digest, s.policy_revision, s.filename)
        if k in self._done:
            self._done.move_to_end(k)
            return False
        if await self.store.exists(*k):
            self._remember(k)
            return False
        at = s.at or time.time()
        envelope = sign(encode(statement(s, decision, self.key.keyid)), self.key.private)
        await self.store.add(s.digest, s.policy_revision, s.filename, at, decision, envelope)
        self._remember(k)
        self.signed += 1
        return True
