"""The stand-in hub's CDN: signed, expiring URLs for LFS objects and the server honouring them.

Like the real hub's LFS/Xet-bridge redirect targets it is another origin (own port), serves whole
files as plain HTTP bytes with Range, sends an ETag that is not the content hash, and refuses
URLs whose signature or expiry is wrong with an XML 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

from aiohttp import web

from tests.fakes.hf_http import HubMode, RecordedRequest, disposition, send_file
from tests.fakes.hf_repos import HubFile, Repo


class FakeCdn:
    def __init__(self) -> None:
        self.url = ""  # set once the server runs
        self._secret = secrets.token_bytes(16)

    def sign(self, path: str, params: Mapping[str, str]) -> str:
        """Signature over the decoded query (clients may re-encode it), like a signed CDN URL."""
        text = path + "".join(f"\n{k}={v}" for k, v in sorted(params.items()) if k != "Signature")
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _repo_hash(repo: Repo) -> str:
        return hashlib.sha256(f"{repo.api_type}/{repo.repo_id}".encode()).hexdigest()

    def location(self, repo: Repo, item: HubFile, mode: HubMode) -> str:
        """A signed, expiring absolute URL on the CDN server (like the real hub's LFS 302)."""
        digest = self._repo_hash(repo)
        if mode.xet and item.xet_hash:
            path = f"/xet-bridge-us/{digest}/{item.xet_hash}"
        else:
            path = f"/repos/{digest[:2]}/{digest[2:4]}/{digest}/{item.sha256}"
        params = {
            "response-content-disposition": disposition(item.path, download=False),
            "response-content-type": "application/octet-stream",
            "Expires": str(int(time.time()) + mode.cdn_url_ttl),
        }
        params["Signature"] = self.sign(path, params)
        return f"{self.url}{path}?{urlencode(params, quote_via=quote)}"

    async def handle(
        self,
        request: web.Request,
        entry: RecordedRequest,
        repos: Iterable[Repo],
        mode: HubMode,
    ) -> web.StreamResponse:
        def denied(reason: str) -> web.Response:
            body = (
                '<?xml version="1.0"?>'
                f"<Error><Code>AccessDenied</Code><Message>{reason}</Message></Error>"
            )
            return web.Response(status=403, text=body, content_type="application/xml")

        if entry.path.startswith("/cas/"):
            return denied("The fake hub has no Xet CAS: keep clients on plain HTTP")
        params = {k: v for k, v in request.query.items()}
        signature = params.get("Signature", "")
        if request.method not in ("GET", "HEAD") or not hmac.compare_digest(
            signature, self.sign(entry.path, params)
        ):
            return denied("Access denied")
        if int(request.query.get("Expires", "0")) < time.time():
            return denied("Request has expired")
        parts = entry.path.split("/")
        found = [
            (repo, item)
            for repo in repos
            if self._repo_hash(repo) in parts
            for item in repo.lfs_files()
            if parts[-1] in (item.sha256, item.xet_hash)
        ]
        if not found:
            return denied("Access denied")
        repo, item = found[0]
        entry.repo_id, entry.file = repo.repo_id, item.path
        headers = {
            "Content-Type": request.query.get("response-content-type", "application/octet-stream"),
            "Content-Disposition": request.query.get("response-content-disposition", ""),
            "ETag": f'"{hashlib.md5(item.sha256.encode()).hexdigest()}"',  # not the sha256
            "Last-Modified": "Mon, 04 Mar 2024 10:00:00 GMT",
            "Cache-Control": "public, max-age=604800, immutable, s-maxage=604800",
            "Vary": "Origin",
        }
        return await send_file(request, entry, item, headers, mode)
