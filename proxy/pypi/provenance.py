"""Provenance regression (PEP 740): who publishes a project, and does a new release match?

The first attested file of a project records its publisher (kind + repository from the
attestation bundle).  Later, a file of a newer version without provenance, or attested by a
different publisher, is a finding.  Files older than the first attested version predate the
project's use of attestations and are not findings.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from packaging.version import InvalidVersion, Version

from mirror_store.metadata import SqliteMetadata

from ..errors import AirlockError
from ..upstream import UpstreamClient
from .model import File

SCHEMA = """
CREATE TABLE IF NOT EXISTS pypi_provenance (
    name TEXT PRIMARY KEY, publisher TEXT NOT NULL, first_version TEXT NOT NULL,
    recorded_at REAL NOT NULL);
"""
MAX_DOC = 4 * 1024 * 1024


def publisher_of(doc: Any) -> str | None:
    """'<kind>:<repository>' of the first attestation bundle, or None if not attested."""
    if not isinstance(doc, dict):
        return None
    for bundle in doc.get("attestation_bundles") or ():
        pub = bundle.get("publisher") if isinstance(bundle, dict) else None
        if isinstance(pub, dict) and pub.get("kind"):
            where = pub.get("repository") or pub.get("project") or pub.get("issuer") or ""
            return f"{pub['kind']}:{where}"
    return None


def _newer(version: str | None, than: str) -> bool:
    if version is None:
        return True  # unparseable: cannot prove it predates attestations
    try:
        return Version(version) > Version(than)
    except InvalidVersion:
        return True


class ProvenanceStore:
    def __init__(self, meta: SqliteMetadata) -> None:
        self._meta = meta
        meta.add_schema(SCHEMA)

    async def facts(
        self, name: str, f: File, version: str | None, client: UpstreamClient | None
    ) -> dict[str, Any]:
        publisher: str | None = None
        fetch_error: str | None = None
        if f.provenance and client is not None:
            try:
                resp = await client.get_page(f.provenance, "application/json")
                if len(resp.body) <= MAX_DOC:
                    publisher = publisher_of(json.loads(resp.body))
            except (AirlockError, ValueError) as e:
                fetch_error = str(e)[:200]

        def q(c: sqlite3.Connection) -> tuple[str, str] | None:
            row = c.execute(
                "SELECT publisher, first_version FROM pypi_provenance WHERE name=?", (name,)
            ).fetchone()
            if row is None and publisher is not None and version is not None:
                c.execute(
                    "INSERT INTO pypi_provenance VALUES (?,?,?,?)",
                    (name, publisher, version, time.time()),
                )
            return (row[0], row[1]) if row else None

        recorded = await self._meta.run(q)
        finding: str | None = None
        if recorded is not None:
            rec_pub, first_version = recorded
            if publisher is None and _newer(version, first_version):
                finding = (
                    f"{f.filename} has no provenance, but releases since {first_version} "
                    f"were attested by {rec_pub}"
                )
                if fetch_error:
                    finding += f" (provenance could not be read: {fetch_error})"
            elif publisher is not None and publisher != rec_pub:
                finding = (
                    f"{f.filename} is attested by {publisher}, but the project's "
                    f"releases were attested by {rec_pub}"
                )
        return {
            "present": publisher is not None,
            "publisher": publisher,
            "recorded_publisher": recorded[0] if recorded else publisher,
            "finding": finding,
        }
