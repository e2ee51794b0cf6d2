"""Hub routes: one raw-path dispatcher under ``/hf`` with thin handlers.

HEAD|GET /hf/{[datasets/|spaces/]}{repo}/resolve/{rev}/{path}   a file (HEAD: metadata only)
GET      /hf/api/{type}s/{repo}[/revision/{rev}]               repo info
GET      /hf/api/{type}s/{repo}/tree/{rev}[/{path}]            paged listing (Link rebased here)
POST     /hf/api/{type}s/{repo}/paths-info/{rev}               entries for paths
GET      /hf/api/{type}s/{repo}/xet-{read,write}-token/…       refused: clients stay on HTTP
GET      /hf/api/agent-harnesses                               {} (recent clients poll it)
"""

from __future__ import annotations

from aiohttp import web

from ..decision import Client
from ..errors import BadRequest
from ..identity import CLIENT_KEY, UPSTREAM_AUTH_KEY, client_of
from ..trust.attest_served import capture_decision, hf_hook
from .errors import HubNotFound, HubRefused
from .files import HfFiles
from .model import RepoInfo
from .paths import PREFIX, Api, Resolve, Static, parse
from .service import HfService
from .sources import REVALIDATING, Auth, Page
from .wire import dump_json, header_safe, query_pairs

SERVICE: web.AppKey[HfService] = web.AppKey("hf_service")
FILES: web.AppKey[HfFiles] = web.AppKey("hf_files")
AUTH: web.AppKey[tuple[str, bool]] = web.AppKey("hf_auth")  # (server token, forward client's)
PUBLIC_URL: web.AppKey[str] = web.AppKey("hf_public_url")
XET_REFUSED = (
    "Xet transfers are disabled by this mirror; files are served over plain HTTP "
    "(set HF_HUB_DISABLE_XET=1 and clear stale caches)"
)


def _auth(request: web.Request) -> Auth:
    """Upstream credentials.  An airlock token is consumed by the identity middleware and never
    forwarded; only a bearer token it does not know (the user's own hub token) may be."""
    token, forward = request.app[AUTH]
    if CLIENT_KEY in request:
        header = request.get(UPSTREAM_AUTH_KEY)
        users = header if isinstance(header, str) else None
    else:  # identity middleware not installed: the header is the user's
        users = request.headers.get("Authorization")
    return Auth.for_request(users, token, forward)


def _client(request: web.Request) -> Client:
    return client_of(request)


def _base(request: web.Request) -> str:
    """The hub endpoint as this client reached it (``…/hf``), for absolute links."""
    public = request.app[PUBLIC_URL]
    root = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    return root + PREFIX


def _stale_headers(info: RepoInfo) -> dict[str, str]:
    if info.stale is None:
        return {}
    return {
        "X-Airlock-Stale": header_safe(
            info.stale
            if info.stale == REVALIDATING
            else f"upstream failed, serving stored data: {info.stale}"
        ),
        "Warning": '110 airlock "Response is stale"',
    }


def _json(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body, headers=headers, content_type="application/json", charset="utf-8"
    )


def _page(request: web.Request, page: Page) -> web.Response:
    headers = {}
    if page.next_link:
        headers["Link"] = f'<{_base(request)}{page.next_link}>; rel="next"'
    return _json(page.body, headers)


async def _paths_info_args(request: web.Request) -> tuple[list[str], bool]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError as e:
            raise BadRequest("paths-info body is not JSON") from e
        if not isinstance(data, dict):
            raise BadRequest("paths-info body must be an object")
        paths = data.get("paths", [])
        expand = bool(data.get("expand"))
    else:
        form = await request.post()
        paths = form.getall("paths", [])
        expand = str(form.get("expand", "")).lower() in ("1", "true")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("paths must be strings")
    if len(paths) > 10_000:
        raise BadRequest("too many paths")
    return [str(p) for p in paths], expand


def _method(request: web.Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)


async def dispatch(request: web.Request) -> web.StreamResponse:
    route = parse(request.rel_url.raw_path)
    if isinstance(route, Static):
        return _json(b"{}")
    service = request.app[SERVICE]
    if isinstance(route, Resolve):
        _method(request, "GET", "HEAD")
        client = _client(request)
        with capture_decision() as decided:  # for the served log: this request's decision
            ctx = await service.resolve(route, _auth(request), client)
        files = request.app[FILES]
        if request.method == "HEAD":
            return files.head(ctx)
        served = hf_hook(request, client, ctx.repo, ctx.commit, ctx.meta.path, decided)
        return await files.get(request, ctx, served)
    assert isinstance(route, Api)
    pairs = query_pairs(request.rel_url.raw_query_string)
    if route.op in ("info", "revision"):
        _method(request, "GET")
        info = await service.info(route, pairs, _auth(request), _client(request))
        return _json(dump_json(info.body), _stale_headers(info))
    if route.op == "tree":
        _method(request, "GET")
        return _page(request, await service.tree(route, pairs, _auth(request), _client(request)))
    if route.op == "paths-info":
        _method(request, "POST")
        paths, expand = await _paths_info_args(request)
        page = await service.paths_info(route, paths, expand, _auth(request), _client(request))
        return _page(request, page)
    if route.op == "xet-token":
        raise HubRefused(XET_REFUSED, 403)
    raise HubNotFound(f"/{route.name} is not served by this mirror", "")


def setup_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "/{tail:.*}", dispatch)
