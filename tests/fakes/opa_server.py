"""A stand-in OPA REST server for tests: OPA's own engine (opa-golib) behind a small aiohttp app.

No ``opa`` binary can be installed on the build machines (see README, "OPA server mode"), but
``opa-golib-python-bindings`` embeds the real OPA (v1.20) as a Go shared library.  This app puts
the REST subset airlock uses in front of it, so evaluation, compile checks and error codes are
OPA's, not ours:

    GET    /health
    GET    /v1/policies                 GET/PUT/DELETE /v1/policies/{id}
    GET/POST /v1/data/{path}            PUT/PATCH/DELETE /v1/data/{path}

Every change rebuilds an engine from the stored modules and data and compiles it before it is
swapped in, so a rejected PUT leaves the previous state serving, as in OPA.  The engine always
runs with strict built-in errors (the bindings offer nothing else); requests record whether the
client asked for ``strict-builtin-errors``.

Test-only controls (not OPA API): ``POST /_fake/faults`` {"delay": s, "status": code,
"routes": ["POST /v1/data", ...]}, ``GET /_fake/stats``, ``POST /_fake/reset``.

It runs in its own process (``python -m tests.fakes.opa_server --port 0`` prints the port):
the Go runtime must never be loaded into a process that forks afterwards, as the test process
does.  ``opa_process()`` starts one and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def available() -> bool:
    return importlib.util.find_spec("opa_bindings") is not None


_ERROR_RX = re.compile(r"(?:(\S+?):(\d+): )?(rego_\w+|eval_\w+): (.*?)(?=\n\S+?:\d+: |\Z)", re.S)


def _errors(exc: Any) -> list[dict[str, Any]]:
    """OPA-style error objects from an OpaError's text ("1 error occurred: f:3: rego_x: msg")."""
    text = str(getattr(exc, "message", exc))
    out = []
    for m in _ERROR_RX.finditer(text):
        err: dict[str, Any] = {"code": m[3], "message": m[4].strip()}
        if m[1]:
            err["location"] = {"file": m[1], "row": int(m[2]), "col": 1}
        out.append(err)
    return out or [{"code": getattr(exc, "code", "unknown"), "message": text}]


@dataclass
class _State:
    modules: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    engine: Any = None


class FakeOpa:
    def __init__(self) -> None:
        self.bindings = importlib.import_module("opa_bindings")
        self.state = _State()
        self.lock = asyncio.Lock()
        self.faults: dict[str, Any] = {}
        self.stats: Counter[str] = Counter()
        self.queries: dict[str, dict[str, str]] = {}  # route -> its last query string
        self.app = web.Application(middlewares=[self._middleware])
        r = self.app.router
        r.add_get("/health", self._health)
        r.add_get("/v1/policies", self._list_policies)
        r.add_get("/v1/policies/{id:.+}", self._get_policy)
        r.add_put("/v1/policies/{id:.+}", self._put_policy)
        r.add_delete("/v1/policies/{id:.+}", self._delete_policy)
        for path in ("/v1/data", "/v1/data/{path:.*}"):
            r.add_get(path, self._get_data)
            r.add_post(path, self._post_data)
            r.add_put(path, self._put_data)
            r.add_patch(path, self._patch_data)
            r.add_delete(path, self._delete_data)
        r.add_post("/_fake/faults", self._set_faults)
        r.add_get("/_fake/stats", self._stats)
        r.add_post("/_fake/reset", self._reset)

    # -- plumbing ----------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)  # type: ignore[no-any-return]
        route = f"{request.method} {request.path}"  # fault "routes" match by prefix
        self.stats[route] += 1
        self.queries[route] = dict(request.query)
        faults = self.faults
        if not faults.get("routes") or any(route.startswith(x) for x in faults["routes"]):
            if faults.get("delay"):
                await asyncio.sleep(faults["delay"])
            if faults.get("status"):
                return web.json_response({"code": "fault"}, status=faults["status"])
        return await handler(request)  # type: ignore[no-any-return]

    def _build(self, modules: dict[str, str], data: dict[str, Any]) -> Any:
        """A compiled engine for this state; raises OpaError like OPA's compiler would."""
        engine = self.bindings.OpaEngine()
        engine.print_handler = lambda *_: None
        if data:
            engine.add_data(data)
        for mid, src in modules.items():
            engine.add_policy(mid, src)
        engine.eval_query("x := true")  # prepare = compile every module, as OPA does on PUT
        return engine

    async def _commit(self, modules: dict[str, str], data: dict[str, Any]) -> web.Response | None:
        try:
            engine = await asyncio.to_thread(self._build, modules, data)
        except self.bindings.OpaError as e:
            return web.json_response(
                {
                    "code": "invalid_parameter",
                    "message": "error(s) occurred while compiling module(s)",
                    "errors": _errors(e),
                },
                status=400,
            )
        self.state = _State(modules, data, engine)
        return None

    # -- OPA API -------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _list_policies(self, request: web.Request) -> web.Response:
        result = [{"id": k, "raw": v} for k, v in self.state.modules.items()]
        return web.json_response({"result": result})

    async def _get_policy(self, request: web.Request) -> web.Response:
        mid = request.match_info["id"]
        if mid not in self.state.modules:
            return web.json_response({"code": "resource_not_found"}, status=404)
        return web.json_response({"result": {"id": mid, "raw": self.state.modules[mid]}})

    async def _put_policy(self, request: web.Request) -> web.Response:
        mid, src = request.match_info["id"], await request.text()
        async with self.lock:
            failure = await self._commit({**self.state.modules, mid: src}, self.state.data)
        return failure or web.json_response({})

    async def _delete_policy(self, request: web.Request) -> web.Response:
        mid = request.match_info["id"]
        async with self.lock:
            if mid not in self.state.modules:
                msg = f"storage_not_found_error: policy id {mid!r}"
                return web.json_response({"code": "resource_not_found", "message": msg}, status=404)
            modules = {k: v for k, v in self.state.modules.items() if k != mid}
            failure = await self._commit(modules, self.state.data)
        return failure or web.json_response({})

    @staticmethod
    def _path(request: web.Request) -> list[str]:
        return [p for p in request.match_info.get("path", "").split("/") if p]

    async def _evaluate(self, request: web.Request, inp: Any) -> web.Response:
        engine, path = self.state.engine, ".".join(self._path(request))
        if engine is None:
            engine = self.state.engine = await asyncio.to_thread(self._build, {}, {})
        try:
            value = await asyncio.to_thread(engine.eval_document, path, inp)
        except self.bindings.OpaUndefinedError:
            return web.json_response({})  # OPA: an undefined document has no "result"
        except self.bindings.OpaError as e:
            body = {"code": "internal_error", "message": "error(s) occurred while evaluating query"}
            return web.json_response({**body, "errors": _errors(e)}, status=500)
        return web.json_response({"result": value})

    async def _get_data(self, request: web.Request) -> web.Response:
        return await self._evaluate(request, None)

    async def _post_data(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        return await self._evaluate(request, body.get("input"))

    async def _put_data(self, request: web.Request) -> web.Response:
        value, path = await request.json(), self._path(request)
        async with self.lock:
            data = json.loads(json.dumps(self.state.data))
            if not path:
                data = value
            else:
                node = data
                for key in path[:-1]:
                    node = node.setdefault(key, {})
                node[path[-1]] = value
            failure = await self._commit(self.state.modules, data)
        return failure or web.Response(status=204)

    async def _patch_data(self, request: web.Request) -> web.Response:
        ops, path = await request.json(), self._path(request)
        async with self.lock:
            data = json.loads(json.dumps(self.state.data))
            for op in ops:
                keys = path + [k for k in op["path"].split("/") if k]
                node = data
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                if op["op"] == "remove":
                    node.pop(keys[-1], None)
                else:
                    node[keys[-1]] = op["value"]
            failure = await self._commit(self.state.modules, data)
        return failure or web.Response(status=204)

    async def _delete_data(self, request: web.Request) -> web.Response:
        path = self._path(request)
        async with self.lock:
            data = json.loads(json.dumps(self.state.data))
            node = data
            for key in path[:-1]:
                node = node.get(key, {})
            if not path or path[-1] not in node:
                return web.json_response({"code": "resource_not_found"}, status=404)
            del node[path[-1]]
            failure = await self._commit(self.state.modules, data)
        return failure or web.Response(status=204)

    # -- test controls ---------------------------------------------------

    async def _set_faults(self, request: web.Request) -> web.Response:
        self.faults = await request.json()
        return web.json_response(self.faults)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": dict(self.stats), "queries": self.queries})

    async def _reset(self, request: web.Request) -> web.Response:
        async with self.lock:
            self.state, self.faults, self.stats, self.queries = _State(), {}, Counter(), {}
        return web.json_response({})


async def _serve(host: str, port: int) -> None:
    runner = web.AppRunner(FakeOpa().app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))


# -- for tests ---------------------------------------------------------------


@dataclass
class OpaProcess:
    url: str
    proc: subprocess.Popen[str]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
            return json.loads(resp.read() or b"null")

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})

    def faults(self, **faults: Any) -> None:
        self._call("POST", "/_fake/faults", faults)

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_fake/stats"))

    def policies(self) -> dict[str, str]:
        return {p["id"]: p["raw"] for p in self._call("GET", "/v1/policies")["result"]}


@contextlib.contextmanager
def opa_process() -> Iterator[OpaProcess]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.opa_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"stand-in OPA server did not start (exit {proc.wait(5)})")
        yield OpaProcess(f"http://127.0.0.1:{line}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    main()
