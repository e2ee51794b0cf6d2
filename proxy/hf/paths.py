"""Raw-path routing for ``/hf/…``: split the still-encoded path, then unquote each segment.

Clients percent-encode a revision with no safe characters (``refs%2Fpr%2F1``) and a tree path
the same way, while a file path keeps its slashes; a decoded path would make these ambiguous
(docs/hf-hub-protocol.md §3).  Everything here is pure and raises BadRequest on nonsense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from ..errors import BadRequest, NotFound
from .model import API_TYPES, URL_PREFIXES, RepoRef, RepoType, valid_repo_id

PREFIX = "/hf"
ApiOp = Literal["info", "revision", "tree", "paths-info", "xet-token", "unsupported"]
_OPS: dict[str, ApiOp] = {
    "revision": "revision",
    "tree": "tree",
    "paths-info": "paths-info",
    "xet-read-token": "xet-token",
    "xet-write-token": "xet-token",
}
# Repo operations the mirror does not serve (answered 404 with a reason, never proxied).
_OTHER_OPS = {"refs", "commits", "commit", "discussions", "preupload", "settings", "lfs-files"}
MAX_SEGMENT = 1024


@dataclass(frozen=True, slots=True)
class Resolve:
    """``/{[datasets/|spaces/]}{repo}/resolve/{rev}/{path}``"""

    ref: RepoRef
    revision: str
    path: str


@dataclass(frozen=True, slots=True)
class Api:
    """``/api/{type}s/{repo}[/{op}[/{rev}[/{path}]]]``"""

    ref: RepoRef
    op: ApiOp
    revision: str | None = None
    path: str = ""
    name: str = ""  # the op as sent, for messages


@dataclass(frozen=True, slots=True)
class Static:
    """Endpoints answered locally: ``/api/agent-harnesses``."""

    name: str


Route = Resolve | Api | Static


def _text(raw: str, what: str) -> str:
    value = unquote(raw)
    if not value or len(value) > MAX_SEGMENT:
        raise BadRequest(f"{what} must be 1-{MAX_SEGMENT} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "\\" in value:
        raise BadRequest(f"{what} {value[:80]!r} contains forbidden characters")
    return value


def _file_path(raw_segments: list[str], what: str) -> str:
    parts = [_text(s, what) for s in raw_segments]
    path = "/".join(parts)
    if any(p in ("", ".", "..") for p in path.split("/")):
        raise BadRequest(f"{what} {path[:120]!r} is not a valid path")
    return path


def _repo(repo_type: RepoType, raw_segments: list[str]) -> RepoRef:
    repo_id = "/".join(unquote(s) for s in raw_segments)
    if not valid_repo_id(repo_id):
        raise BadRequest(f"{repo_id[:120]!r} is not a valid repository id")
    return RepoRef(repo_type, repo_id)


def _revision(raw: str) -> str:
    rev = _text(raw, "revision")
    if ".." in rev.split("/") or rev.startswith("/") or rev.endswith("/"):
        raise BadRequest(f"revision {rev[:80]!r} is not valid")
    return rev


def parse(raw_path: str) -> Route:
    """Route a raw (percent-encoded) request path that starts with ``/hf/``.

    Raises:
        BadRequest: a malformed repo id, revision or path.
        NotFound: nothing the mirror serves lives there.
    """
    if not raw_path.startswith(PREFIX + "/"):
        raise NotFound("not a hub path")
    segments = raw_path[len(PREFIX) + 1 :].split("/")
    if segments[:1] == ["api"]:
        return _parse_api(segments[1:])
    repo_type: RepoType = "model"
    if segments[0] in URL_PREFIXES:
        repo_type, segments = URL_PREFIXES[segments[0]], segments[1:]
    for index in (2, 1):
        if len(segments) > index + 2 and segments[index] == "resolve":
            return Resolve(
                _repo(repo_type, segments[:index]),
                _revision(segments[index + 1]),
                _file_path(segments[index + 2 :], "file path"),
            )
    raise NotFound("this mirror serves /resolve downloads and the /api endpoints of the hub only")


def _parse_api(segments: list[str]) -> Route:
    if segments == ["agent-harnesses"]:
        return Static("agent-harnesses")
    if len(segments) < 2 or segments[0] not in API_TYPES or not all(segments[1:2]):
        raise NotFound("this API endpoint is not served by the mirror")
    repo_type = API_TYPES[segments[0]]
    rest = segments[1:]
    known = set(_OPS) | _OTHER_OPS
    split = 1 if len(rest) >= 2 and rest[1] in known else 2
    repo_segments, ops = rest[:split], rest[split:]
    if not all(repo_segments) or len(repo_segments) < split:
        raise NotFound("this API endpoint is not served by the mirror")
    ref = _repo(repo_type, repo_segments)
    if not ops or ops == [""]:
        return Api(ref, "info")
    name = ops[0]
    op = _OPS.get(name)
    if op is None:
        return Api(ref, "unsupported", name=name)
    if len(ops) < 2 or not ops[1]:
        if op in ("revision", "paths-info"):
            raise NotFound(f"/{name} needs a revision")
        return Api(ref, op, "main", name=name)  # HF: tree without a revision lists main
    revision = _revision(ops[1])
    path = ""
    if op == "tree" and len(ops) > 2 and any(ops[2:]):
        path = _file_path([s for s in ops[2:] if s], "tree path")
    elif op in ("revision", "paths-info") and len(ops) > 2:
        raise NotFound(f"unexpected path after /{name}/{revision}")
    return Api(ref, op, revision, path, name=name)
