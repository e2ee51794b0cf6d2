"""PyPI routes: thin handlers that validate, negotiate, call the chain and render.

GET /pypi/simple/                          projects this mirror has seen
GET /pypi/simple/{project}/                PEP 503 HTML / PEP 691 JSON by Accept
GET /pypi/files/{project}/{filename}       a distribution file (or its .metadata)
GET /pypi/provenance/{project}/{filename}  PEP 740 provenance, passed through
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote

from aiohttp import web
from packaging.utils import canonicalize_name

from mirror_store.digest import Digest

from ..errors import BadRequest, NotAcceptable, NotFound
from ..identity import client_of
from ..lru import SizedLru
from ..serving import safe_component
from .files import PypiFiles
from .model import File, ProjectDetail
from .policy import PolicyIndex
from .sources import Index
from .wire import (
    HTML_TYPE,
    HTML_V1_TYPE,
    JSON_TYPE,
    content_type,
    negotiate,
    render_html,
    render_json,
    render_list_html,
    render_list_json,
)

# PEP 508 project names; anything else (unicode look-alikes, dots alone, NUL…) is a 400.
_PROJECT_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
MAX_NAME = 200

POLICY_INDEX: web.AppKey[PolicyIndex] = web.AppKey("pypi_policy_index")
STORED_INDEX: web.AppKey[Index] = web.AppKey("pypi_stored_index")
FILES: web.AppKey[PypiFiles] = web.AppKey("pypi_files")


class RenderCache:
    """Rendered pages by (filtered page object, synthesized-metadata object, format).

    The policy layer hands out the same filtered page object while its decision is cached,
    and the files layer replaces (never mutates) its synthesized map, so object identity is
    a safe key; entries hold the objects, so identities cannot be reused while cached.
    """

    def __init__(self, entries: int = 512, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._cache: SizedLru[tuple[str, str], tuple[object, object, bytes]] = SizedLru(
            entries, max_size=max_bytes, size=lambda hit: len(hit[2])
        )

    def render(self, detail: ProjectDetail, synthesized: dict[str, Digest], fmt: str) -> bytes:
        key = (detail.name, fmt)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is detail and hit[1] is synthesized:
            return hit[2]
        proxied = _proxied(detail, synthesized)
        text = render_json(proxied) if fmt == "json" else render_html(proxied)
        body = text.encode()
        self._cache.put(key, (detail, synthesized, body))
        return body


RENDERED: web.AppKey[RenderCache] = web.AppKey("pypi_rendered")


def _project(request: web.Request) -> tuple[str, str]:
    raw = request.match_info["project"]
    if len(raw) > MAX_NAME or not _PROJECT_RE.match(raw):
        raise BadRequest(f"{raw[:80]!r} is not a valid project name (PEP 508)")
    return raw, canonicalize_name(raw)


def _format(request: web.Request) -> str:
    fmt = negotiate(request.headers.get("Accept"))
    if fmt is None:
        raise NotAcceptable(
            f"cannot produce any type in Accept: {request.headers.get('Accept', '')[:200]!r}; "
            f"supported: {JSON_TYPE}, {HTML_V1_TYPE}, {HTML_TYPE}"
        )
    return fmt


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+\Z")  # what quote() always leaves as it is


def _proxied(detail: ProjectDetail, synthesized: dict[str, Digest]) -> ProjectDetail:
    """Point every file, metadata and provenance URL at this proxy (relative to the page)."""
    files = []
    for f in detail.files:
        q = f.filename if _UNRESERVED.match(f.filename) else quote(f.filename)
        meta = f.core_metadata
        if meta is False and f.filename in synthesized:
            meta = {"sha256": synthesized[f.filename]}
        files.append(  # positional: dataclasses.replace costs 3 times more, per file
            File(
                f.filename,
                f"../../files/{detail.name}/{q}",
                f.hashes,
                f.requires_python,
                f.yanked,
                meta,
                f.gpg_sig,
                f.size,
                f.upload_time,
                f"../../provenance/{detail.name}/{q}" if f.provenance else None,
            )
        )
    return replace(detail, files=tuple(files))


async def simple_root(request: web.Request) -> web.Response:
    fmt = _format(request)
    plist = await request.app[STORED_INDEX].list_projects()
    body = render_list_json(plist) if fmt == "json" else render_list_html(plist)
    return web.Response(
        text=body,
        headers={
            "Content-Type": content_type(fmt),  # type: ignore[arg-type]
            "Vary": "Accept",
        },
    )


async def simple_project(request: web.Request) -> web.StreamResponse:
    raw, name = _project(request)
    if raw != name or not request.path.endswith("/"):
        location = f"/pypi/simple/{name}/"
        if request.query_string:
            location += f"?{request.query_string}"
        raise web.HTTPMovedPermanently(location)
    fmt = _format(request)
    page, decision = await request.app[POLICY_INDEX].project(name, client_of(request))
    synthesized = await request.app[FILES].synthesized_metadata(name)
    detail = page.detail
    if decision.reasons and decision.enforced and _is_pip(request):
        detail = _listed_for_pip(detail)
    body = request.app[RENDERED].render(detail, synthesized, fmt)
    headers = {
        "Content-Type": content_type(fmt),  # type: ignore[arg-type]
        "Vary": "Accept",
        "Cache-Control": "max-age=60",
        "X-Airlock-Policy-Revision": decision.revision[:12],
        "X-Airlock-Upstream": page.upstream,
    }
    if page.stale:  # why the stored page is answered as it is (names the upstream, no URL)
        headers["X-Airlock-Stale"] = _header_safe(page.stale)
        headers["Warning"] = '110 airlock "Response is stale"'
    return web.Response(body=body, headers=headers)


BLOCKED_PREFIX = "blocked by airlock: "  # PolicyIndex marks denied files so


def _is_pip(request: web.Request) -> bool:
    return request.headers.get("User-Agent", "").startswith("pip/")


def _listed_for_pip(detail: ProjectDetail) -> ProjectDetail:
    """A project the policy denies as a whole, as pip is shown it: files not marked yanked.

    pip never prints the reason of a yanked file it skips (an unpinned install only says
    "Ignored the following yanked versions"), and a refused page is logged at debug level.
    Listed plainly, pip picks a file and its download is refused with a 403 whose reason
    phrase (which pip prints) says why.  No byte of a denied file is ever served.  Other
    clients (uv prints yank reasons) keep the yanked page.
    """
    files = tuple(
        replace(f, yanked=False)
        if isinstance(f.yanked, str) and f.yanked.startswith(BLOCKED_PREFIX)
        else f
        for f in detail.files
    )
    return replace(detail, files=files)


def _header_safe(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:500]


async def files(request: web.Request) -> web.StreamResponse:
    raw, name = _project(request)
    if raw != name:
        raise NotFound(f"use the canonical project name {name!r}")
    filename = safe_component(request.match_info["filename"], "file name")
    handler = request.app[FILES]
    if filename.endswith(".metadata"):
        return await handler.serve_metadata(
            request, name, filename.removesuffix(".metadata"), client_of(request)
        )
    return await handler.serve_file(request, name, filename, client_of(request))


async def provenance(request: web.Request) -> web.StreamResponse:
    raw, name = _project(request)
    if raw != name:
        raise NotFound(f"use the canonical project name {name!r}")
    filename = safe_component(request.match_info["filename"], "file name")
    return await request.app[FILES].serve_provenance(name, filename, client_of(request))


def setup_routes(app: web.Application) -> None:
    app[RENDERED] = RenderCache()
    app.router.add_get("/pypi/simple/", simple_root)
    app.router.add_get("/pypi/simple/{project}/", simple_project)
    app.router.add_get("/pypi/simple/{project}", simple_project)
    app.router.add_get("/pypi/files/{project}/{filename}", files)
    app.router.add_get("/pypi/provenance/{project}/{filename}", provenance)
