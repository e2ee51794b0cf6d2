"""Neutral data of the Hub side: repo references, identities and per-file facts.

Field comments cite the hub's wire names (``# HF: …``); see docs/hf-hub-protocol.md §9.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset", "space")
API_TYPES: dict[str, RepoType] = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES: dict[str, RepoType] = {"datasets": "dataset", "spaces": "space"}

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Hub repo names: letters, digits, '-', '_', '.'; at most one namespace segment.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def is_commit(revision: str | None) -> bool:
    """A full 40-hex commit id: the only revision form the policy calls "pinned"."""
    return bool(revision) and bool(_COMMIT_RE.match(revision or ""))


def is_sha256(value: str | None) -> bool:
    return bool(value) and bool(_SHA256_RE.match(value or ""))


def valid_repo_id(repo_id: str) -> bool:
    parts = repo_id.split("/")
    return 1 <= len(parts) <= 2 and all(_NAME_RE.match(p) and ".." not in p for p in parts)


@dataclass(frozen=True, slots=True)
class RepoRef:
    """One repository as a client names it."""

    repo_type: RepoType
    repo_id: str  # "namespace/name" or a legacy one-segment id

    @property
    def api_type(self) -> str:
        return f"{self.repo_type}s"  # HF: /api/{models|datasets|spaces}/…

    @property
    def url_prefix(self) -> str:
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"

    @property
    def key(self) -> str:
        """How admins name the repo in policy data: "org/name", "datasets/org/name", …"""
        return f"{self.url_prefix}{self.repo_id}"

    @property
    def org(self) -> str | None:
        return self.repo_id.split("/", 1)[0] if "/" in self.repo_id else None

    def renamed(self, repo_id: str) -> RepoRef:
        return RepoRef(self.repo_type, repo_id)


@dataclass(frozen=True, slots=True)
class Identity:
    """What tells one repository apart from a later one under the same name (doc §10)."""

    object_id: str | None  # HF: "_id", a database id that changes on delete + re-create
    author: str | None  # HF: "author"
    created_at: str | None  # HF: "createdAt", ISO-8601
    canonical: str  # HF: "id", where the requested name leads (differs after a rename)

    def to_input(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id,
            "author": self.author,
            "created_at": self.created_at,
            "canonical": self.canonical,
        }


@dataclass(frozen=True, slots=True)
class RepoInfo:
    """A parsed ``/api/{type}s/{repo}[/revision/{rev}]`` answer plus the raw JSON we pass on."""

    ref: RepoRef  # as requested
    body: dict[str, Any]  # HF JSON with Xet fields removed
    stale: str | None = None  # why it could not be revalidated, when served stale
    fetched_at: float = 0.0  # when the hub answered it (the source's clock)

    @property
    def sha(self) -> str | None:
        sha = self.body.get("sha")  # HF: commit the revision resolves to
        return sha if isinstance(sha, str) and is_commit(sha) else None

    @property
    def canonical(self) -> RepoRef:
        rid = self.body.get("id")  # HF: canonical id (required by every client)
        return self.ref.renamed(rid) if isinstance(rid, str) and valid_repo_id(rid) else self.ref

    @property
    def private(self) -> bool:
        return self.body.get("private") is True

    @property
    def gated(self) -> bool:
        return self.body.get("gated") not in (None, False)

    @property
    def public(self) -> bool:
        return not self.private and not self.gated

    def identity(self) -> Identity:
        def text(key: str) -> str | None:
            value = self.body.get(key)
            return value if isinstance(value, str) and value else None

        return Identity(text("_id"), text("author"), text("createdAt"), self.canonical.repo_id)


@dataclass(frozen=True, slots=True)
class FileMeta:
    """One file of one commit, with what we verify it against."""

    path: str
    size: int
    lfs: bool
    sha256: str | None  # HF: LFS oid (X-Linked-Etag, tree lfs.oid); None for regular files
    blob_sha1: str | None  # HF: git blob id of a regular file (ETag, tree oid)

    @property
    def etag(self) -> str:
        """What the hub itself sends as the file's etag (the client's blob name)."""
        value = self.sha256 if self.lfs else self.blob_sha1
        assert value is not None
        return value

    @property
    def content_key(self) -> str:
        """Stable id of the content, for single-flight fills across repos."""
        return f"sha256:{self.sha256}" if self.lfs else f"git:{self.blob_sha1}"
