#!/usr/bin/env python3
"""Copy what airlock serves for one lock (the full JSON project pages and the files fetch.py
picks) into a static tree, for nginx to serve as the same-pages anchor (same_pages_anchor.sh).
usage: same_pages_mirror.py AIRLOCK_SIMPLE_URL LOCK OUTDIR FETCH_PY_DIR"""

import asyncio
import hashlib
import json
import os
import re
import sys
from urllib.parse import urljoin

import aiohttp
from packaging.utils import canonicalize_name

JSON = "application/vnd.pypi.simple.v1+json"


async def main(index: str, lock: str, out: str, fetch_dir: str) -> None:
    sys.path.insert(0, fetch_dir)
    from fetch import pick  # the benchmark client's own choice of file

    text = open(lock, encoding="utf-8").read()
    reqs = [
        (canonicalize_name(m[1]), m[2])
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", text, re.M)
    ]
    async with aiohttp.ClientSession() as s:
        for name, version in reqs:
            page_url = f"{index.rstrip('/')}/{name}/"
            async with s.get(page_url, headers={"Accept": JSON}) as r:
                r.raise_for_status()
                body = await r.read()
            os.makedirs(f"{out}/simple/{name}", exist_ok=True)
            with open(f"{out}/simple/{name}/index.json", "wb") as fh:
                fh.write(body)
            for f in pick(json.loads(body)["files"], name, version):
                url = urljoin(page_url, f["url"])  # ../../files/<name>/<file> on both servers
                path = f"{out}/files/{name}/{f['filename']}"
                os.makedirs(os.path.dirname(path), exist_ok=True)
                async with s.get(url) as r:
                    r.raise_for_status()
                    data = await r.read()
                if hashlib.sha256(data).hexdigest() != f["hashes"]["sha256"]:
                    raise SystemExit(f"hash mismatch for {url}")
                with open(path, "wb") as fh:
                    fh.write(data)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
