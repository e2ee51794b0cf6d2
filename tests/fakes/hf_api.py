"""JSON documents of the stand-in hub's /api endpoints (pure functions of a repo and a commit)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from tests.fakes.hf_repos import Commit, Folder, HubFile, Repo

JSON = dict[str, object]

# Extra info fields the hub adds per repo type besides the repo's own `card`.
_TYPE_FIELDS: dict[str, JSON] = {
    "model": {"spaces": [], "widgetData": [], "inference": "not-popular-enough"},
    "dataset": {"description": "", "citation": None, "paperswithcode_id": None},
    "space": {},
}


def iso(moment: datetime) -> str:
    """ISO-8601 with milliseconds and `Z`, as the hub writes timestamps."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sibling(item: HubFile, *, blobs: bool) -> JSON:
    out: JSON = {"rfilename": item.path}
    if blobs:
        out["blobId"] = item.oid
        out["size"] = item.size
        if item.lfs:
            out["lfs"] = {
                "sha256": item.sha256,
                "size": item.size,
                "pointerSize": item.pointer_size,
            }
    return out


def repo_info(
    repo: Repo,
    commit: Commit,
    *,
    blobs: bool = False,
    security_status: bool = False,
    expand: Sequence[str] = (),
) -> JSON:
    """Body of GET /api/{type}s/{repo}[/revision/{rev}]."""
    full: JSON = {"_id": repo.object_id, "id": repo.repo_id}
    if repo.repo_type == "model":
        full["modelId"] = repo.repo_id
    if repo.author:
        full["author"] = repo.author
    full |= {
        "sha": commit.oid,
        "lastModified": iso(repo.last_modified),
        "private": repo.private,
        "gated": repo.gated,
        "disabled": repo.disabled,
        "tags": [],
        "downloads": 0,
        "likes": 0,
    }
    full |= _TYPE_FIELDS[repo.repo_type]
    full |= repo.card
    full["siblings"] = [sibling(f, blobs=blobs) for f in commit.files.values()]
    weights = [f for f in commit.files.values() if f.path.endswith(".safetensors")]
    if repo.repo_type == "model" and weights:
        full["safetensors"] = {"parameters": {"F32": 20 * len(weights)}, "total": 20 * len(weights)}
    full["createdAt"] = iso(repo.created_at)
    full["usedStorage"] = repo.used_storage()
    if security_status:
        full["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
    if expand:
        # With expand=..., the hub answers the identity plus exactly the requested fields.
        return {k: v for k, v in full.items() if k in {"_id", "id", *expand}}
    return full


def _last_commit(repo: Repo, commit: Commit, path: str) -> JSON:
    last = repo.last_commit_for(commit, path)
    return {"id": last.oid, "title": last.title, "date": iso(last.date)}


def tree_entry(
    repo: Repo, commit: Commit, item: HubFile | Folder, *, expand: bool, xet: bool, redact: bool
) -> JSON:
    """One entry of a tree listing or a paths-info answer."""
    if isinstance(item, Folder):
        out: JSON = {"type": "directory", "oid": item.oid, "size": 0, "path": item.path}
    else:
        out = {"type": "file", "oid": item.oid, "size": item.size, "path": item.path}
        if item.lfs:
            out["lfs"] = {"oid": item.sha256, "size": item.size, "pointerSize": item.pointer_size}
            if xet and item.xet_hash:
                # Gated repos show a redacted hash to callers without access (xet-core #895).
                out["xetHash"] = "*" * 64 if redact else item.xet_hash
    if expand:
        out["lastCommit"] = _last_commit(repo, commit, item.path)
        if isinstance(item, HubFile):
            out["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
    return out


def refs(repo: Repo, *, include_prs: bool) -> JSON:
    def ref(name: str, full: str, sha: str) -> JSON:
        return {"name": name, "ref": full, "targetCommit": sha}

    out: JSON = {
        "branches": [ref(n, f"refs/heads/{n}", s) for n, s in repo.branches.items()],
        "converts": [],
        "tags": [ref(n, f"refs/tags/{n}", s) for n, s in repo.tags.items()],
    }
    if include_prs:
        out["pullRequests"] = [
            ref(f"refs/pr/{n}", f"refs/pr/{n}", s) for n, s in repo.pull_requests.items()
        ]
    return out


def commit_entries(commits: Iterable[Commit]) -> list[JSON]:
    return [
        {
            "id": c.oid,
            "title": c.title,
            "message": c.message,
            "date": iso(c.date),
            "authors": [{"user": c.author, "avatar": None}],
        }
        for c in commits
    ]


def whoami(user: str) -> JSON:
    return {
        "type": "user",
        "id": "6" + user.encode().hex().ljust(23, "0")[:23],
        "name": user,
        "fullname": user.title(),
        "isPro": False,
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "read"}},
    }
