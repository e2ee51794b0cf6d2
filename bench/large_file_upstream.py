"""The upstream side of bench/large_file.py: the payload file and the tiny upstream index.

``make_payload`` makes a sparse payload file and caches its sha256 next to it, so reruns start
at once; ``serve_upstream`` serves a PEP 691 JSON page for ``bigpkg`` listing one wheel with
its sha256, size and an old upload-time, and the wheel itself from disk (FileResponse:
Content-Length, sendfile). large_file.py runs it in its own process (``--serve-upstream``) on
127.0.0.1, port 0, and reads the port back from its first line of output.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from pathlib import Path

from aiohttp import web

PROJECT = "bigpkg"
FILENAME = "bigpkg-1.0-py3-none-any.whl"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
UPLOAD_TIME = "2020-01-01T00:00:00.000000Z"  # years old: the default 7-day cooldown passes
HASH_BLOCK = 8 * 1024 * 1024


# -- payload ------------------------------------------------------------------------------------


def make_payload(path: Path, size: int) -> tuple[str, bool]:
    """The payload file (sparse) and its sha256, cached next to it; True when it was hashed."""
    if not path.exists() or path.stat().st_size != size:
        with path.open("wb") as f:
            f.truncate(size)
    st = path.stat()
    cache = path.with_name(path.name + ".sha256.json")
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached["size"] == st.st_size and cached["mtime_ns"] == st.st_mtime_ns:
            return str(cached["sha256"]), False
    h = hashlib.sha256()
    buf = bytearray(HASH_BLOCK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    digest = h.hexdigest()
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    cache.write_text(json.dumps(record), encoding="utf-8")
    return digest, True


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512 if path.exists() else 0


# -- the upstream index (runs in its own process: `--serve-upstream`) ----------------------------


async def serve_upstream(payload: Path, sha256: str, size: int) -> None:
    async def page(request: web.Request) -> web.Response:
        body = {
            "meta": {"api-version": "1.1"},
            "name": PROJECT,
            "versions": ["1.0"],
            "files": [
                {
                    "filename": FILENAME,
                    "url": f"../../files/{FILENAME}",
                    "hashes": {"sha256": sha256},
                    "size": size,
                    "upload-time": UPLOAD_TIME,
                    "yanked": False,
                }
            ],
        }
        return web.Response(text=json.dumps(body), headers={"Content-Type": JSON_TYPE})

    async def wheel(request: web.Request) -> web.StreamResponse:
        if request.match_info["filename"] != FILENAME:
            raise web.HTTPNotFound
        return web.FileResponse(payload, headers={"Content-Type": "application/octet-stream"})

    app = web.Application()
    app.router.add_get(f"/simple/{PROJECT}/", page)
    app.router.add_get("/files/{filename}", wheel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]  # bound to port 0: the kernel picked it
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
