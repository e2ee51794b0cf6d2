"""Repositories served by the stand-in Hugging Face Hub: git objects, LFS files, commits, refs.

Everything here is plain data with real identifiers: regular files are git blobs (oid =
``sha1(b"blob <len>\\0" + content)``), LFS files are stored in git as their pointer file (oid =
git sha1 of the pointer, ETag = sha256 of the content), folders carry real git tree oids and
commits real git commit oids. File content is a ``Blob`` (tests/fakes/hf_blobs.py): large content
is generated from a seed in 1 MiB chunks and is never held whole.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from tests.fakes.hf_blobs import Blob, BytesBlob, blob_sha256

RepoType = Literal["model", "dataset", "space"]
Gated = Literal[False, "auto", "manual"]

LFS_SUFFIXES = (".safetensors", ".bin", ".parquet", ".gguf", ".pt")
# Floor of `createdAt` on the hub for repos migrated from the old storage (doc section 10).
HUB_CREATED_FLOOR = datetime(2022, 3, 2, 23, 29, 4, tzinfo=UTC)

GITATTRIBUTES = b"".join(
    b"*%s filter=lfs diff=lfs merge=lfs -text\n" % suffix.encode() for suffix in LFS_SUFFIXES
)


def git_object_id(kind: str, body: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(body)) + body).hexdigest()


def git_blob_id(data: bytes) -> str:
    """The git blob sha1 the hub uses as ETag of regular files."""
    return git_object_id("blob", data)


def lfs_pointer(sha256: str, size: int) -> bytes:
    # The pointer format names the LFS spec version by URL: part of the format, not a host we call.
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def safetensors_bytes(tensors: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> bytes:
    """A valid safetensors file with F32 tensors (8-byte header length, padded JSON, data)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


@dataclass(frozen=True)
class HubFile:
    """One file of one commit, with every identifier the hub exposes for it."""

    path: str
    blob: Blob
    lfs: bool
    oid: str  # git blob oid (of the pointer file for LFS files)
    sha256: str
    pointer_size: int | None
    xet_hash: str | None

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def etag(self) -> str:
        """What the hub sends as ETag / X-Linked-Etag (unquoted)."""
        return self.sha256 if self.lfs else self.oid

    def read(self) -> bytes:
        return b"".join(self.blob.chunks())


def make_file(path: str, content: bytes | Blob) -> HubFile:
    blob: Blob = BytesBlob(content) if isinstance(content, bytes) else content
    sha256 = blob_sha256(blob)
    if path.endswith(LFS_SUFFIXES):
        pointer = lfs_pointer(sha256, blob.size)
        xet = hashlib.sha256(b"xet-merkle\0" + bytes.fromhex(sha256)).hexdigest()
        return HubFile(path, blob, True, git_blob_id(pointer), sha256, len(pointer), xet)
    assert isinstance(blob, BytesBlob), "regular (non-LFS) files must be small in-memory bytes"
    return HubFile(path, blob, False, git_blob_id(blob.data), sha256, None, None)


@dataclass(frozen=True)
class Folder:
    path: str
    oid: str  # git tree oid


def _tree_oids(files: Mapping[str, HubFile]) -> dict[str, str]:
    """Git tree oid of every folder ("" is the root), computed bottom-up like git does."""
    dirs: dict[str, dict[str, tuple[bool, str]]] = {"": {}}
    for path, item in files.items():
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            parent, name = "/".join(parts[:depth]), parts[depth]
            dirs.setdefault(parent, {})[name] = (True, "")
            dirs.setdefault("/".join(parts[: depth + 1]), {})
        dirs.setdefault("/".join(parts[:-1]), {})[parts[-1]] = (False, item.oid)
    oids: dict[str, str] = {}
    for folder in sorted(dirs, key=lambda p: p.count("/") if p else -1, reverse=True):
        rows: list[tuple[bytes, bytes]] = []
        for name, (is_dir, oid) in dirs[folder].items():
            child = f"{folder}/{name}" if folder else name
            mode, digest = (b"40000", oids[child]) if is_dir else (b"100644", oid)
            sort_key = name.encode() + (b"/" if is_dir else b"")
            rows.append((sort_key, mode + b" " + name.encode() + b"\0" + bytes.fromhex(digest)))
        oids[folder] = git_object_id("tree", b"".join(row for _, row in sorted(rows)))
    return oids


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: datetime
    author: str
    files: Mapping[str, HubFile]
    folders: Mapping[str, str]  # folder path -> git tree oid; "" is the root tree

    def entry(self, path: str) -> HubFile | Folder | None:
        if path in self.files:
            return self.files[path]
        if path in self.folders:
            return Folder(path, self.folders[path])
        return None

    def children(self, folder: str, *, recursive: bool) -> list[HubFile | Folder]:
        """Entries below `folder` ("" = root), sorted by path; folders precede their content."""
        prefix = f"{folder}/" if folder else ""
        found: list[HubFile | Folder] = []
        for path, oid in self.folders.items():
            if path and path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                found.append(Folder(path, oid))
        for path, item in self.files.items():
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                found.append(item)
        return sorted(found, key=lambda e: e.path)


def make_commit(
    parent: Commit | None,
    changes: Mapping[str, bytes | Blob | None],
    *,
    title: str,
    date: datetime,
    author: str = "acme-bot",
) -> Commit:
    """A commit applying `changes` (None deletes a path) on top of `parent`."""
    files = dict(parent.files) if parent else {}
    for path, content in changes.items():
        if content is None:
            files.pop(path, None)
        else:
            files[path] = make_file(path, content)
    files = dict(sorted(files.items()))
    folders = _tree_oids(files)
    stamp = int(date.timestamp())
    body = f"tree {folders['']}\n"
    if parent:
        body += f"parent {parent.oid}\n"
    ident = f"{author} <{author}@users.noreply.invalid> {stamp} +0000"
    message = f"{title}\n"
    body += f"author {ident}\ncommitter {ident}\n\n{message}"
    oid = git_object_id("commit", body.encode())
    return Commit(oid, parent.oid if parent else None, title, message, date, author, files, folders)


def object_id(created_at: datetime, salt: str) -> str:
    """A 24-hex database id whose first 8 hex digits are the creation time (an ObjectId)."""
    return f"{int(created_at.timestamp()):08x}" + hashlib.sha1(salt.encode()).hexdigest()[:16]


@dataclass
class Repo:
    repo_type: RepoType
    repo_id: str
    object_id: str
    created_at: datetime
    commits: dict[str, Commit]
    branches: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)
    private: bool = False
    gated: Gated = False
    disabled: bool = False
    readers: set[str] = field(default_factory=set)  # user names allowed into private/gated repos
    card: dict[str, object] = field(default_factory=dict)  # extra fields of the info JSON
    generation: int = 0

    @property
    def author(self) -> str | None:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    @property
    def api_type(self) -> str:
        return f"{self.repo_type}s"

    @property
    def url_prefix(self) -> str:
        """Path prefix of web/resolve URLs: "" for models, "datasets/" or "spaces/" otherwise."""
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"

    @property
    def head(self) -> Commit:
        return self.commits[self.branches["main"]]

    @property
    def last_modified(self) -> datetime:
        return max(c.date for c in self.commits.values())

    def resolve(self, revision: str) -> Commit | None:
        """Full 40-hex sha, branch, tag or refs/pr/N -> commit (None if unknown)."""
        if revision in self.commits:
            return self.commits[revision]
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and revision.startswith("refs/pr/") and revision[8:].isdigit():
            sha = self.pull_requests.get(int(revision[8:]))
        return self.commits[sha] if sha else None

    def history(self, commit: Commit) -> list[Commit]:
        """`commit` and its ancestors, newest first."""
        chain = [commit]
        while chain[-1].parent:
            chain.append(self.commits[chain[-1].parent])
        return chain

    def last_commit_for(self, commit: Commit, path: str) -> Commit:
        """The newest commit in `commit`'s history that changed `path` (file or folder)."""

        def ident(c: Commit) -> str | None:
            found = c.entry(path)
            return found.oid if found else None

        chain = self.history(commit)
        for newer, older in itertools.pairwise(chain):
            if ident(newer) != ident(older):
                return newer
        return chain[-1]

    def lfs_files(self) -> Iterator[HubFile]:
        for commit in self.commits.values():
            yield from (f for f in commit.files.values() if f.lfs)

    def used_storage(self) -> int:
        unique = {f.oid: f.size for c in self.commits.values() for f in c.files.values()}
        return sum(unique.values())


def build_repo(
    repo_type: RepoType,
    repo_id: str,
    snapshots: Sequence[Mapping[str, bytes | Blob | None]],
    *,
    created_at: datetime,
    tags: Mapping[str, int] | None = None,
    pull_requests: Mapping[int, Mapping[str, bytes | Blob | None]] | None = None,
    generation: int = 0,
    **options: object,
) -> Repo:
    """A repo whose `main` is a linear history of `snapshots` (changes per commit, oldest first).

    `tags` maps a tag name to an index into `snapshots`; each pull request is one commit on top of
    `main`. `options` set further `Repo` fields (private, gated, readers, card, ...).
    """
    commits: list[Commit] = []
    for index, changes in enumerate(snapshots):
        date = created_at + timedelta(minutes=5) + timedelta(days=30 * index)
        title = "Initial commit" if index == 0 else f"Update files ({index + 1})"
        commits.append(
            make_commit(commits[-1] if commits else None, changes, title=title, date=date)
        )
    head = commits[-1]
    repo = Repo(
        repo_type,
        repo_id,
        object_id(created_at, f"{repo_type}/{repo_id}/{generation}"),
        created_at,
        {c.oid: c for c in commits},
        {"main": head.oid},
        {name: commits[i].oid for name, i in (tags or {}).items()},
        generation=generation,
    )
    for number, changes in (pull_requests or {}).items():
        date = head.date + timedelta(days=3 * number)
        pr = make_commit(head, changes, title=f"Proposed change (#{number})", date=date)
        repo.commits[pr.oid] = pr
        repo.pull_requests[number] = pr.oid
    for key, value in options.items():
        setattr(repo, key, value)
    return repo


@dataclass(frozen=True)
class Expected:
    """What the hub serves for one file at one revision."""

    commit: str
    file: HubFile

    @property
    def sha256(self) -> str:
        return self.file.sha256

    @property
    def blob_sha1(self) -> str:
        """Git blob oid as listed in trees (of the LFS pointer for LFS files)."""
        return self.file.oid

    @property
    def etag(self) -> str:
        return self.file.etag

    @property
    def size(self) -> int:
        return self.file.size

    @property
    def lfs(self) -> bool:
        return self.file.lfs

    def content(self) -> bytes:
        return self.file.read()
