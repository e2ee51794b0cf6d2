"""A real PEP 503/691 index on port 0, serving distributions built in the test session.

Faults can be switched on per file to test the proxy: wrong bytes, a body cut halfway, slow
bodies, the whole server down (503) or hanging (every request accepted, never answered).
Every request is counted by path.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from .dists import Dist

OLD_UPLOAD = "2020-01-01T00:00:00.000000Z"


@dataclass
class IndexFile:
    dist: Dist
    upload_time: str = OLD_UPLOAD
    yanked: bool | str = False
    serve_metadata: bool = True  # advertise and serve PEP 658 metadata for wheels
    provenance: str | None = None  # publisher repository of its PEP 740 attestation


@dataclass
class Faults:
    corrupt: set[str] = field(default_factory=set)  # serve flipped bytes for these files
    cut: set[str] = field(default_factory=set)  # close the connection halfway
    slow: dict[str, float] = field(default_factory=dict)  # seconds to pause mid-body
    down: bool = False  # every request answers 503
    hang: bool = False  # every request is accepted and never answered (until stop)
    html_only: bool = False  # ignore Accept and answer PEP 503 HTML
    no_hashes: set[str] = field(default_factory=set)  # list these files without any hash


class FakeIndex:
    def __init__(self) -> None:
        self.projects: dict[str, list[IndexFile]] = {}
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.url = ""
        self.hung: Counter[str] = Counter()  # requests held by the hang fault, by path
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._release: asyncio.Event | None = None

    def add(self, *dists: Dist, **kwargs: object) -> None:
        for d in dists:
            if d.filename.endswith(".whl"):
                name = str(parse_wheel_filename(d.filename)[0])
            else:
                name = str(parse_sdist_filename(d.filename)[0])
            self.projects.setdefault(canonicalize_name(name), []).append(
                IndexFile(d, **kwargs)  # type: ignore[arg-type]
            )

    def file(self, filename: str) -> IndexFile:
        for files in self.projects.values():
            for f in files:
                if f.dist.filename == filename:
                    return f
        raise KeyError(filename)

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple/"

    # -- handlers ---------------------------------------------------------------------------

    async def _hold(self, request: web.Request) -> None:
        """The hang fault: the request was read; no status line is ever sent (until stop)."""
        self.hung[request.path] += 1
        if self._release is None:
            self._release = asyncio.Event()
        await self._release.wait()

    async def _project(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        if self.faults.hang:
            await self._hold(request)
        if self.faults.down:
            return web.Response(status=503, text="index down")
        name = request.match_info["project"]
        if name not in self.projects:
            return web.Response(status=404, text="no such project")
        files = self.projects[name]
        accept = request.headers.get("Accept", "")
        use_json = "application/vnd.pypi.simple.v1+json" in accept and not self.faults.html_only
        if use_json:
            body = json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "name": name,
                    "versions": sorted({_version(f.dist.filename) for f in files}),
                    "files": [self._file_json(f) for f in files],
                }
            )
            ctype = "application/vnd.pypi.simple.v1+json"
        else:
            body = self._html(name, files)
            ctype = "text/html"
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(text=body, headers={"Content-Type": ctype, "ETag": etag})

    def _hashes(self, f: IndexFile) -> dict[str, str]:
        return {} if f.dist.filename in self.faults.no_hashes else {"sha256": f.dist.sha256}

    def _file_json(self, f: IndexFile) -> dict[str, object]:
        out: dict[str, object] = {
            "filename": f.dist.filename,
            "url": f"../../files/{f.dist.filename}",
            "hashes": self._hashes(f),
            "size": len(f.dist.data),
            "upload-time": f.upload_time,
            "yanked": f.yanked,
        }
        if f.dist.requires_python:
            out["requires-python"] = f.dist.requires_python
        if f.dist.metadata is not None and f.serve_metadata:
            out["core-metadata"] = {"sha256": hashlib.sha256(f.dist.metadata).hexdigest()}
        if f.provenance is not None:
            out["provenance"] = f"../../provenance/{f.dist.filename}"
        return out

    def _html(self, name: str, files: list[IndexFile]) -> str:
        rows = []
        for f in files:
            href = f"../../files/{f.dist.filename}"
            if f.dist.filename not in self.faults.no_hashes:
                href += f"#sha256={f.dist.sha256}"
            attrs = f' href="{html.escape(href)}"'
            if f.dist.requires_python:
                attrs += f' data-requires-python="{html.escape(f.dist.requires_python)}"'
            if f.yanked is not False:
                attrs += (
                    f' data-yanked="{html.escape(f.yanked if isinstance(f.yanked, str) else "")}"'
                )
            if f.dist.metadata is not None and f.serve_metadata:
                attrs += (
                    f' data-core-metadata="sha256={hashlib.sha256(f.dist.metadata).hexdigest()}"'
                )
            rows.append(f"<a{attrs}>{html.escape(f.dist.filename)}</a><br/>")
        return f"<!DOCTYPE html><html><body><h1>{name}</h1>{''.join(rows)}</body></html>"

    async def _root(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        links = "".join(f'<a href="{n}/">{n}</a>' for n in sorted(self.projects))
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        if self.faults.hang:
            await self._hold(request)
        if self.faults.down:
            return web.Response(status=503, text="index down")
        filename = request.match_info["filename"]
        if filename.endswith(".metadata"):
            try:
                f = self.file(filename.removesuffix(".metadata"))
            except KeyError:
                return web.Response(status=404)
            if f.dist.metadata is None:
                return web.Response(status=404)
            return web.Response(body=f.dist.metadata)
        try:
            f = self.file(filename)
        except KeyError:
            return web.Response(status=404)
        data = f.dist.data
        if filename in self.faults.corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(data)
        await resp.prepare(request)
        half = len(data) // 2
        await resp.write(data[:half])
        if filename in self.faults.slow:
            await asyncio.sleep(self.faults.slow[filename])
        if filename in self.faults.cut:
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(data[half:])
        await resp.write_eof()
        return resp

    async def _provenance(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        try:
            f = self.file(request.match_info["filename"])
        except KeyError:
            return web.Response(status=404)
        publisher = {"kind": "GitHub", "repository": f.provenance, "workflow": "release.yml"}
        bundle = {"publisher": publisher, "attestations": []}
        return web.json_response({"version": 1, "attestation_bundles": [bundle]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/simple/", self._root)
        app.router.add_get("/simple/{project}/", self._project)
        app.router.add_get("/files/{filename}", self._file)
        app.router.add_get("/provenance/{filename}", self._provenance)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self._port}"

    async def stop(self) -> None:
        """Stop serving (the port stays reserved for a restart with ``start``)."""
        if self._release is not None:
            self._release.set()  # let held requests end, so shutdown does not wait on them
            self._release = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeIndex]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()


def _version(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[1])
    return str(parse_sdist_filename(filename)[1])
