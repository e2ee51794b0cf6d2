"""HTTP plumbing of the stand-in hub: modes, request log, errors, Range and body streaming."""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from aiohttp import web

from tests.fakes.hf_repos import HubFile

Server = Literal["hub", "cdn"]

EXPOSED = (
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
    "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash"
)
TEXT_SUFFIXES = (".json", ".txt", ".md", ".py", ".jsonl", ".gitattributes", ".yaml", ".csv")
_FLIP = bytes(255 - i for i in range(256))
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class DropRule:
    """Cut the connection in the middle of a file body (mode c).

    Matches GETs that deliver a body of `path` (any file if None) of `repo_id` (any repo if None)
    on `server` (either if None). The first `times` matching responses are cut after `after_bytes`
    body bytes (None: half of that response's body); later ones are served whole.
    """

    path: str | None = None
    repo_id: str | None = None
    after_bytes: int | None = None
    times: int = 1
    server: Server | None = None
    done: int = 0

    def take(self, server: Server, repo_id: str, path: str) -> bool:
        hit = (
            self.done < self.times
            and self.path in (None, path)
            and self.repo_id in (None, repo_id)
            and self.server in (None, server)
        )
        if hit:
            self.done += 1
        return hit


@dataclass
class HubMode:
    """Behaviour switches; change them at any time during a test (`hub.mode.xet = True`)."""

    lfs_redirect: bool = False  # (a) LFS /resolve answers 302 with an absolute Location on the CDN
    xet: bool = False  # (b) advertise Xet: X-Xet-Hash + Link rel=xet-auth, xetHash in JSON
    xet_token_status: int = 200  # status of /xet-read-token and /xet-write-token
    drop: DropRule | None = None  # (c) cut file bodies
    corrupt_paths: set[str] = field(default_factory=set)  # (e) serve wrong bytes (same length)
    ignore_range: bool = False  # answer 200 with the whole body even when a Range is sent
    tree_page_size: int = 1000  # the hub's page size for /tree
    tree_page_size_expanded: int = 50  # ... and with expand=true
    commits_page_size: int = 50
    cdn_url_ttl: int = 3600  # seconds a signed CDN URL stays valid


@dataclass
class RecordedRequest:
    server: Server
    method: str
    path: str  # raw, percent-encoded as sent
    query: str  # raw query string
    headers: dict[str, str]  # lower-cased names
    status: int | None = None
    repo_id: str | None = None  # canonical repo id, when the request named a repo
    file: str | None = None  # file path in the repo, when a file body/metadata was asked for
    body_bytes: int = 0  # file body bytes actually sent

    @property
    def url_path(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


class RequestLog:
    """Every request both servers received, in order (mode f: count upstream fetches)."""

    def __init__(self) -> None:
        self.entries: list[RecordedRequest] = []

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()

    def filter(
        self,
        *,
        server: Server | None = None,
        method: str | None = None,
        path: str | None = None,
        path_contains: str | None = None,
        repo_id: str | None = None,
        file: str | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.entries
            if server in (None, r.server)
            and method in (None, r.method)
            and path in (None, r.path)
            and (path_contains is None or path_contains in r.path)
            and repo_id in (None, r.repo_id)
            and file in (None, r.file)
            and status in (None, r.status)
        ]

    def count(
        self,
        *,
        server: Server | None = None,
        method: str | None = None,
        path: str | None = None,
        path_contains: str | None = None,
        repo_id: str | None = None,
        file: str | None = None,
        status: int | None = None,
    ) -> int:
        return len(
            self.filter(
                server=server,
                method=method,
                path=path,
                path_contains=path_contains,
                repo_id=repo_id,
                file=file,
                status=status,
            )
        )

    def body_fetches(self, file: str, repo_id: str | None = None) -> int:
        """GETs that started sending the content of `file` (hub or CDN, 200 or 206)."""
        return sum(
            1
            for r in self.entries
            if r.method == "GET"
            and r.file == file
            and repo_id in (None, r.repo_id)
            and r.status in (200, 206)
        )

    @property
    def counter(self) -> Counter[tuple[str, str]]:
        """(method, raw path) -> number of requests."""
        return Counter((r.method, r.path) for r in self.entries)


def request_id() -> str:
    return f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def parse_bool(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes"}


def error_response(
    request: web.Request,
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Hub error: X-Error-Code (if any) + X-Error-Message headers and a JSON `error` body."""
    out = {"X-Request-Id": request_id(), "Access-Control-Expose-Headers": EXPOSED}
    if code:
        out["X-Error-Code"] = code
    out["X-Error-Message"] = message
    out.update(headers or {})
    body = json.dumps({"error": message}).encode()
    out["Content-Type"] = "application/json; charset=utf-8"
    if request.method == "HEAD":
        out["Content-Length"] = str(len(body))
        return web.Response(status=status, headers=out)
    return web.Response(status=status, body=body, headers=out)


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(data).encode()
    out = {
        "X-Request-Id": request_id(),
        "Access-Control-Expose-Headers": EXPOSED,
        **(headers or {}),
    }
    return web.Response(
        status=status, body=body, headers=out, content_type="application/json", charset="utf-8"
    )


def content_type(path: str) -> str:
    return (
        "text/plain; charset=utf-8" if path.endswith(TEXT_SUFFIXES) else "application/octet-stream"
    )


def disposition(path: str, *, download: bool) -> str:
    name = path.rsplit("/", 1)[-1]
    kind = "attachment" if download else "inline"
    return f"{kind}; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"


def redirect(
    request: web.Request, status: int, location: str, headers: dict[str, str]
) -> web.Response:
    word = "Found" if status == 302 else "Temporary Redirect"
    body = f"{word}. Redirecting to {location}".encode()
    out = {**headers, "Location": location, "Content-Type": "text/plain; charset=utf-8"}
    out.setdefault("X-Request-Id", request_id())
    if request.method == "HEAD":
        return web.Response(status=status, headers={**out, "Content-Length": str(len(body))})
    return web.Response(status=status, body=body, headers=out)


def parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["invalid"] | None:
    """Single `bytes=a-b`, `bytes=a-` or `bytes=-n` -> (start, end exclusive).

    None: no usable Range (serve 200); "invalid": unsatisfiable (416). Multi-ranges are ignored.
    """
    match = _RANGE.fullmatch((header or "").strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        return (max(size - length, 0), size) if length and size else "invalid"
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        return "invalid"
    return start, end


async def send_file(
    request: web.Request,
    entry: RecordedRequest,
    item: HubFile,
    headers: dict[str, str],
    mode: HubMode,
) -> web.StreamResponse:
    """Answer HEAD/GET for a file body with Range, corruption (mode e) and drops (mode c)."""
    size = item.size
    wanted = None if mode.ignore_range else parse_range(request.headers.get("Range"), size)
    headers = {**headers, "Accept-Ranges": "bytes"}
    if wanted == "invalid":
        return error_response(
            request,
            416,
            "Requested Range Not Satisfiable",
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = wanted or (0, size)
    status = 206 if wanted else 200
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    repo_id = entry.repo_id or ""
    cut = mode.drop is not None and mode.drop.take(entry.server, repo_id, item.path)
    limit = end - start
    if cut:
        assert mode.drop is not None
        after = mode.drop.after_bytes
        limit = min(limit, (end - start) // 2 if after is None else after)
    corrupt = item.path in mode.corrupt_paths
    for piece in item.blob.chunks(start, start + limit):
        await response.write(piece.translate(_FLIP) if corrupt else piece)
        entry.body_bytes += len(piece)
    if cut:
        assert request.transport is not None
        request.transport.close()  # flushes what was written, then EOF before Content-Length
        return response
    await response.write_eof()
    return response
