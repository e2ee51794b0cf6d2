"""A stand-in Hugging Face Hub and its CDN on 127.0.0.1, built from the hf-hub-protocol notes.

    async with start_fake_hub() as hub:
        hub.url, hub.cdn_url            # http://127.0.0.1:<port> of the hub and of its CDN
        hub.expect(MODEL, "config.json", revision="v1.0")  # commit, sha256, blob sha1, etag, size
        hub.mode.lfs_redirect = True    # see HubMode for every switch
        hub.requests.count(method="GET", file="config.json")

Routing uses the raw (still percent-encoded) path, like the real hub: `refs%2Fpr%2F1` is one
revision segment and a tree path arrives as `sub%2Fdir`.

Modules: hf_hub_state (what the hub holds, the test API, access rules), hf_fixtures (repo names,
tokens, default content), hf_repos (git/LFS data model), hf_blobs (file content streamed in
slices), hf_api (JSON bodies), hf_http (modes, request log, errors, Range/streaming), hf_cdn
(CDN), hf_client (run the real client in a child process).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlencode

from aiohttp import web

from tests.fakes import hf_api
from tests.fakes.hf_fixtures import (
    DEFAULT_LARGE_FILE_SIZE,
    default_repos,
)
from tests.fakes.hf_http import (
    EXPOSED,
    HubMode,
    RecordedRequest,
    Server,
    content_type,
    disposition,
    error_response,
    json_response,
    parse_bool,
    redirect,
    request_id,
    send_file,
)
from tests.fakes.hf_hub_state import HubState
from tests.fakes.hf_repos import Repo, RepoType

_API_OPS = {
    "revision",
    "tree",
    "paths-info",
    "refs",
    "commits",
    "xet-read-token",
    "xet-write-token",
}
Handler = Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]]


class FakeHub(HubState):
    """The hub and CDN servers plus everything a test needs to know about what they serve."""

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.url = await self._serve("hub", self._dispatch)
        self.cdn.url = await self._serve("cdn", self._cdn)

    async def close(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def _serve(self, server: Server, dispatch: Handler) -> str:
        async def handle(request: web.Request) -> web.StreamResponse:
            url = request.rel_url
            entry = RecordedRequest(
                server,
                request.method,
                url.raw_path,
                url.raw_query_string,
                {k.lower(): v for k, v in request.headers.items()},
            )
            self.requests.entries.append(entry)
            response = await dispatch(request, entry)
            entry.status = response.status
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._host, 0).start()
        self._runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    # ---- hub routes ----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request, entry: RecordedRequest) -> web.StreamResponse:
        segments = entry.path.split("/")[1:]
        if segments[:1] == ["api"]:
            return await self._api(request, entry, segments[1:])
        repo_type: RepoType = "model"
        if segments[0] == "datasets":
            repo_type, segments = "dataset", segments[1:]
        elif segments[0] == "spaces":
            repo_type, segments = "space", segments[1:]
        for index in (1, 2):
            if len(segments) > index + 2 and segments[index] == "resolve":
                if request.method not in ("GET", "HEAD"):
                    return error_response(request, 405, "Method not allowed")
                return await self._resolve(
                    request, entry, repo_type, segments[:index], segments[index + 1 :]
                )
        return error_response(request, 404, "Sorry, we can't find the page you are looking for.")

    async def _resolve(
        self,
        request: web.Request,
        entry: RecordedRequest,
        repo_type: RepoType,
        repo_segments: list[str],
        rest: list[str],
    ) -> web.StreamResponse:
        opened = self._open(request, entry, repo_type, "/".join(map(unquote, repo_segments)))
        if isinstance(opened, web.Response):
            return opened
        repo, moved = opened
        raw_rev, raw_path = rest[0], "/".join(rest[1:])
        entry.file = path = unquote(raw_path)
        if moved:
            query = f"?{entry.query}" if entry.query else ""
            location = f"/{repo.url_prefix}{repo.repo_id}/resolve/{raw_rev}/{raw_path}{query}"
            return redirect(request, 307, location, {})
        blocked = self._content_blocked(request, repo)
        if blocked:
            return blocked
        revision = unquote(raw_rev)
        commit = repo.resolve(revision)
        if commit is None:
            return error_response(request, 404, f"Invalid rev id: {revision}", "RevisionNotFound")
        item = commit.files.get(path)
        if item is None:
            extra = {"X-Repo-Commit": commit.oid}
            return error_response(request, 404, "Entry not found", "EntryNotFound", extra)
        headers = {
            "X-Request-Id": request_id(),
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{item.etag}"',
            "Content-Type": content_type(path),
            "Content-Disposition": disposition(
                path, download=parse_bool(request.query.get("download"))
            ),
            "Vary": "Origin, Accept",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": EXPOSED,
        }
        if item.lfs:
            headers["X-Linked-Etag"] = f'"{item.sha256}"'
            headers["X-Linked-Size"] = str(item.size)
            if self.mode.xet and item.xet_hash:
                token_url = (
                    f"{self.url}/api/{repo.api_type}/{repo.repo_id}/xet-read-token/{commit.oid}"
                )
                cas_url = f"{self.cdn_url}/cas/v1/reconstructions/{item.xet_hash}"
                headers["X-Xet-Hash"] = item.xet_hash
                headers["Link"] = (
                    f'<{token_url}>; rel="xet-auth", <{cas_url}>; rel="xet-reconstruction-info"'
                )
            if self.mode.lfs_redirect:
                return redirect(request, 302, self.cdn.location(repo, item, self.mode), headers)
        return await send_file(request, entry, item, headers, self.mode)

    async def _api(
        self, request: web.Request, entry: RecordedRequest, segments: list[str]
    ) -> web.StreamResponse:
        if segments == ["agent-harnesses"]:
            return json_response({})
        if segments == ["whoami-v2"]:
            user = self._user(request)
            if not user:
                return error_response(request, 401, "Invalid credentials in Authorization header")
            return json_response(hf_api.whoami(user))
        kinds: dict[str, RepoType] = {"models": "model", "datasets": "dataset", "spaces": "space"}
        if len(segments) < 2 or segments[0] not in kinds or not all(segments[1:3]):
            return error_response(
                request, 404, "Sorry, we can't find the page you are looking for."
            )
        rest = segments[1:]
        split = 1 if len(rest) >= 2 and rest[1] in _API_OPS else 2
        repo_segments, ops = rest[:split], rest[split:]
        opened = self._open(
            request, entry, kinds[segments[0]], "/".join(map(unquote, repo_segments))
        )
        if isinstance(opened, web.Response):
            return opened
        repo = opened[0]
        op = ops[0] if ops else "revision"
        handler = {
            "revision": self._api_info,
            "tree": self._api_tree,
            "paths-info": self._api_paths_info,
            "refs": self._api_refs,
            "commits": self._api_commits,
            "xet-read-token": self._api_xet_token,
            "xet-write-token": self._api_xet_token,
        }.get(op)
        if handler is None:
            return error_response(
                request, 404, "Sorry, we can't find the page you are looking for."
            )
        expected_method = "POST" if op == "paths-info" else "GET"
        if request.method != expected_method:
            return error_response(request, 405, "Method not allowed")
        return await handler(request, entry, repo, ops[1:])

    async def _cdn(self, request: web.Request, entry: RecordedRequest) -> web.StreamResponse:
        return await self.cdn.handle(request, entry, self.repos.values(), self.mode)

    async def _api_info(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        commit = self._commit_or_error(request, repo, unquote("/".join(args)) if args else "main")
        if isinstance(commit, web.Response):
            return commit
        body = hf_api.repo_info(
            repo,
            commit,
            blobs=parse_bool(request.query.get("blobs")),
            security_status=parse_bool(request.query.get("securityStatus")),
            expand=request.query.getall("expand", []),
        )
        return json_response(body)

    async def _api_tree(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        blocked = self._content_blocked(request, repo) if repo.disabled else None
        if blocked:
            return blocked
        commit = self._commit_or_error(request, repo, unquote(args[0]) if args else "main")
        if isinstance(commit, web.Response):
            return commit
        folder = unquote("/".join(args[1:])).strip("/")
        if folder and folder not in commit.folders:
            message = f'Entry not found: "{folder}" is not a folder of revision {commit.oid}'
            return error_response(request, 404, message, "EntryNotFound")
        recursive = parse_bool(request.query.get("recursive"))
        expand = parse_bool(request.query.get("expand"))
        items = commit.children(folder, recursive=recursive)
        size = self.mode.tree_page_size_expanded if expand else self.mode.tree_page_size
        cursor = request.query.get("cursor")
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        redact = bool(repo.gated) and self._user(request) not in repo.readers
        page = [
            hf_api.tree_entry(repo, commit, item, expand=expand, xet=self.mode.xet, redact=redact)
            for item in items[offset : offset + size]
        ]
        headers = {}
        if offset + size < len(items):
            # Absolute and built from the hub's own URL, like the real hub (not from Host).
            token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            query = urlencode(
                {
                    "recursive": str(recursive).lower(),
                    "expand": str(expand).lower(),
                    "cursor": token,
                }
            )
            headers["Link"] = f'<{self.url}{entry.path}?{query}>; rel="next"'
        return json_response(page, headers=headers)

    async def _api_paths_info(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        blocked = self._content_blocked(request, repo) if repo.disabled else None
        if blocked:
            return blocked
        commit = self._commit_or_error(request, repo, unquote("/".join(args)) if args else "main")
        if isinstance(commit, web.Response):
            return commit
        if request.content_type == "application/json":
            data = await request.json()
            paths = [str(p) for p in data.get("paths", [])]
            expand = bool(data.get("expand"))
        else:
            form = await request.post()
            paths = [str(p) for p in form.getall("paths", [])]
            expand = parse_bool(str(form.get("expand", "")))
        redact = bool(repo.gated) and self._user(request) not in repo.readers
        found = []
        for path in dict.fromkeys(p.strip("/") for p in paths):
            item = commit.entry(path)
            if item is not None:
                found.append(
                    hf_api.tree_entry(
                        repo, commit, item, expand=expand, xet=self.mode.xet, redact=redact
                    )
                )
        return json_response(found)

    async def _api_refs(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        return json_response(
            hf_api.refs(repo, include_prs=parse_bool(request.query.get("include_prs")))
        )

    async def _api_commits(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        commit = self._commit_or_error(request, repo, unquote("/".join(args)) if args else "main")
        if isinstance(commit, web.Response):
            return commit
        history = repo.history(commit)
        page_number = int(request.query.get("p", "0"))
        size = self.mode.commits_page_size
        headers = {}
        if (page_number + 1) * size < len(history):
            headers["Link"] = f'<{self.url}{entry.path}?p={page_number + 1}>; rel="next"'
        page = history[page_number * size : (page_number + 1) * size]
        return json_response(hf_api.commit_entries(page), headers=headers)

    async def _api_xet_token(
        self, request: web.Request, entry: RecordedRequest, repo: Repo, args: list[str]
    ) -> web.StreamResponse:
        blocked = self._content_blocked(request, repo)
        if blocked:
            return blocked
        commit = self._commit_or_error(request, repo, unquote("/".join(args)) if args else "main")
        if isinstance(commit, web.Response):
            return commit
        if self.mode.xet_token_status != 200:
            message = "Xet token refused by the fake hub (mode.xet_token_status)"
            return error_response(request, self.mode.xet_token_status, message)
        expires = int(time.time()) + 3600
        token = secrets.token_urlsafe(24)
        cas = f"{self.cdn_url}/cas"
        headers = {
            "X-Xet-Cas-Url": cas,
            "X-Xet-Access-Token": token,
            "X-Xet-Token-Expiration": str(expires),
        }
        return json_response({"casUrl": cas, "exp": expires, "accessToken": token}, headers=headers)


@asynccontextmanager
async def start_fake_hub(
    *,
    mode: HubMode | None = None,
    repos: Iterable[Repo] | None = None,
    large_file_size: int = DEFAULT_LARGE_FILE_SIZE,
) -> AsyncIterator[FakeHub]:
    """Start hub + CDN on 127.0.0.1 port 0; `repos` defaults to `default_repos(large_file_size)`."""
    if repos is None:
        repos = await asyncio.to_thread(default_repos, large_file_size)
    hub = FakeHub(repos, mode=mode)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.close()
