"""Client identity: tokens map to a client id, groups and scopes; anonymous access is a setting.

pip and uv send the token as basic auth from the index URL
(``http://ci-runner:TOKEN@proxy/pypi/simple/``: the password, or the user name when there is no
password); huggingface_hub sends it as its bearer token (``HF_TOKEN``).  The proxy's token is
not the upstream's: a token airlock knows is consumed here; a bearer token it does not know,
on a hub route, is the user's own hub token and may be forwarded to the configured upstream.

The identity is policy input (``input.client``) and is in every decision event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .decision import Client
from .settings import AccessSettings, ClientSettings

CLIENT_KEY: web.RequestKey[Client] = web.RequestKey("airlock_client", Client)
# The user's own hub token (an Authorization header airlock does not know), forwardable upstream.
UPSTREAM_AUTH_KEY: web.RequestKey[str] = web.RequestKey("airlock_upstream_authorization", str)
OPEN_PATHS = ("/healthz", "/readyz")


class IdentityRegistry:
    """Token digests → clients.  Tokens themselves are never kept."""

    def __init__(self, clients: Iterable[ClientSettings] = ()) -> None:
        self._by_digest: dict[str, Client] = {}
        for c in clients:
            digest = c.token_sha256 or hashlib.sha256(c.token.encode()).hexdigest()
            self.add(Client(id=c.id, groups=tuple(c.groups), scopes=tuple(c.scopes)), digest)

    def add(self, client: Client, token_sha256: str) -> None:
        self._by_digest[token_sha256] = client

    def remove(self, client_id: str) -> None:
        for digest in [d for d, c in self._by_digest.items() if c.id == client_id]:
            del self._by_digest[digest]

    def has_admin(self) -> bool:
        """True when some client may use the admin page and API (the "admin" scope)."""
        return any("admin" in c.scopes for c in self._by_digest.values())

    def __len__(self) -> int:
        return len(self._by_digest)

    def resolve(self, token: str) -> Client | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        # A digest lookup does not leak the token by timing: the secret is hashed first.
        return self._by_digest.get(digest)


def token_of(header: str) -> str | None:
    """The token in an Authorization header (Basic: password, else user; Bearer: the token)."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def _authenticates_itself(path: str) -> bool:
    """The admin page (login form, session cookie) and /metrics (loopback or admin token) check
    access themselves; the admin API and every artifact route rely on this middleware."""
    return path == "/metrics" or (path.startswith("/admin/") and not path.startswith("/admin/api/"))


def _challenge(request: web.Request, message: str) -> web.Response:
    scheme = "Bearer" if request.path.startswith(("/hf", "/admin", "/api")) else "Basic"
    return web.Response(
        status=401,
        reason=f"Unauthorized: {message}"[:300],
        text=f"Unauthorized: {message}\n",
        headers={"WWW-Authenticate": f'{scheme} realm="airlock"', "X-Error-Message": message},
    )


def identity_middleware(registry: IdentityRegistry, access: AccessSettings) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        token = token_of(header) if header else None
        client = registry.resolve(token) if token else None
        if client is not None:
            request[CLIENT_KEY] = Client(
                client.id, client.groups, request.remote or "", client.scopes
            )
            return await handler(request)
        if token and not request.path.startswith("/hf"):
            return _challenge(request, "unknown airlock token")
        if header and request.path.startswith("/hf"):
            request[UPSTREAM_AUTH_KEY] = header  # the user's own hub token
        allowed = (
            access.anonymous == "allow"
            or (access.anonymous == "loopback" and _loopback(request.remote))
            or _authenticates_itself(request.path)
        )
        if not allowed:
            return _challenge(request, "this airlock requires a client token")
        request[CLIENT_KEY] = Client(address=request.remote or "")
        return await handler(request)

    return middleware


def client_of(request: web.Request) -> Client:
    """The identified client (anonymous when the middleware is not installed)."""
    client = request.get(CLIENT_KEY)
    return client if client is not None else Client(address=request.remote or "")
