"""Namespace reuse: the identity of a repo name, recorded on first approval, compared later.

A deleted account's names return to the pool; someone can re-create ``org/name`` with other
content, or take over the old name of a transferred repo so that it stops redirecting (Unit 42,
2025; docs/supply-chain.md §3).  The hub's ``_id`` changes on re-creation, ``createdAt`` moves
forward, and ``id`` shows where a name redirects.  ``findings`` is pure; the policy decides.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..lru import SizedLru
from .model import Identity, RepoRef
from .stored import HfTables

MEMORY_COMMITS = 65536


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # id-changed | recreated | author-changed | redirect-vanished | redirect-changed
    message: str  # one human sentence

    def to_input(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def findings(requested: RepoRef, recorded: Identity, current: Identity) -> list[Finding]:
    """What changed about the repository behind a name since it was approved."""
    name = requested.key
    out: list[Finding] = []
    if recorded.object_id and current.object_id and recorded.object_id != current.object_id:
        out.append(
            Finding(
                "id-changed",
                f"{name} is a different repository than the one approved: its id changed from "
                f"{recorded.object_id} to {current.object_id} (deleted and re-created?)",
            )
        )
    then, now = _instant(recorded.created_at), _instant(current.created_at)
    if then is not None and now is not None and now > then:
        out.append(
            Finding(
                "recreated",
                f"{name} was created at {current.created_at}, after the approved repository "
                f"({recorded.created_at})",
            )
        )
    if recorded.author and current.author and recorded.author != current.author:
        out.append(
            Finding(
                "author-changed",
                f"{name} now belongs to {current.author!r}, approved under {recorded.author!r}",
            )
        )
    was, now_at = recorded.canonical.lower(), current.canonical.lower()
    asked = requested.repo_id.lower()
    if was != now_at:
        if was != asked and now_at == asked:
            out.append(
                Finding(
                    "redirect-vanished",
                    f"{name} used to redirect to {recorded.canonical} and no longer does "
                    "(the old name was re-registered?)",
                )
            )
        else:
            out.append(
                Finding(
                    "redirect-changed",
                    f"{name} now leads to {current.canonical}, approved as {recorded.canonical}",
                )
            )
    return out


class IdentityStore:
    """``hf_identity``: one record per requested name, written on the first approval only."""

    def __init__(self, tables: HfTables) -> None:
        self._tables = tables
        self._cache: dict[tuple[str, str], Identity] = {}

    async def get(self, ref: RepoRef) -> Identity | None:
        key = (ref.repo_type, ref.repo_id.lower())
        hit = self._cache.get(key)
        if hit is not None:
            return hit

        def q(c: sqlite3.Connection) -> Identity | None:
            row = c.execute(
                "SELECT object_id, author, created_at, canonical FROM hf_identity"
                " WHERE repo_type=? AND repo_id=?",
                key,
            ).fetchone()
            return Identity(*row) if row else None

        found = await self._tables.run(q)
        if found is not None:
            self._cache[key] = found
        return found

    async def record(self, ref: RepoRef, identity: Identity) -> None:
        """Record *identity* unless one is recorded already (first approval wins)."""
        key = (ref.repo_type, ref.repo_id.lower())
        if key in self._cache:
            return
        row = (
            *key,
            identity.object_id,
            identity.author,
            identity.created_at,
            identity.canonical,
            time.time(),
        )
        await self._tables.run(
            lambda c: c.execute("INSERT OR IGNORE INTO hf_identity VALUES (?,?,?,?,?,?,?)", row)
        )
        self._cache.pop(key, None)
        await self.get(ref)


class SeenCommits:
    """``hf_commits``: per repo name, the commits airlock has vouched for with an identity check.

    Repo info (and with it the identity) is reused for ``hf.ttl``; a repo deleted and re-created
    within that time would otherwise have its new commits served under the old identity.  A
    commit not listed here makes the service re-check the identity upstream before it serves
    anything of that commit; it is listed once that fresh check matched the recorded identity,
    or a request for it was allowed.
    """

    def __init__(self, tables: HfTables) -> None:
        self._tables = tables
        self._mem: SizedLru[tuple[str, str, str], bool] = SizedLru(MEMORY_COMMITS)

    @staticmethod
    def _key(ref: RepoRef, commit: str) -> tuple[str, str, str]:
        return (ref.repo_type, ref.repo_id.lower(), commit)

    async def known(self, ref: RepoRef, commit: str) -> bool:
        key = self._key(ref, commit)
        if key in self._mem:
            return True
        row = await self._tables.run(
            lambda c: c.execute(
                "SELECT 1 FROM hf_commits WHERE repo_type=? AND repo_id=? AND commit_id=?", key
            ).fetchone()
        )
        if row is not None:
            self._mem.put(key, True)
        return row is not None

    async def add(self, ref: RepoRef, commit: str) -> None:
        key = self._key(ref, commit)
        if key in self._mem:
            return
        row = (*key, time.time())
        await self._tables.run(
            lambda c: c.execute("INSERT OR IGNORE INTO hf_commits VALUES (?,?,?,?)", row)
        )
        self._mem.put(key, True)
