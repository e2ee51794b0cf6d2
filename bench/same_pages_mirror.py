#!/usr/bin/env python3
"""Copy what airlock serves for one lock (the full JSON project pages and the files fetch.py
picks) into a static tree, for nginx to serve as the same-pages anchor (same_pages_anchor.sh).
usage: same_pages_mirror.py AIRLOCK_SIMPLE_URL LOCK OUTDIR FETCH_PY_DIR"""

import asyncio
import hashlib
import json
import re
import sys
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from packaging.utils import canonicalize_name

JSON = "application/vnd.pypi.simple.v1+json"


LOCK_LINE = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", re.M)


async def main(index: str, text: str, out: Path, fetch_dir: str) -> None:
    sys.path.insert(0, fetch_dir)
    from fetch import pick  # the benchmark client's own choice of file

    reqs = [(canonicalize_name(m[1]), m[2]) for m in LOCK_LINE.finditer(text)]
    async with aiohttp.ClientSession() as s:
        for name, version in reqs:
            page_url = f"{index.rstrip('/')}/{name}/"
            async with s.get(page_url, headers={"Accept": JSON}) as r:
                r.raise_for_status()
                body = await r.read()
            (out / "simple" / name).mkdir(parents=True, exist_ok=True)
            (out / "simple" / name / "index.json").write_bytes(body)
            for f in pick(json.loads(body)["files"], name, version):
                url = urljoin(page_url, f["url"])  # ../../files/<name>/<file> on both servers
                path = out / "files" / name / f["filename"]
                path.parent.mkdir(parents=True, exist_ok=True)
                async with s.get(url) as r:
                    r.raise_for_status()
                    data = await r.read()
                if hashlib.sha256(data).hexdigest() != f["hashes"]["sha256"]:
                    raise SystemExit(f"hash mismatch for {url}")
                path.write_bytes(data)


if __name__ == "__main__":
    index, lock, out, fetch_dir = sys.argv[1:5]
    asyncio.run(main(index, Path(lock).read_text(encoding="utf-8"), Path(out), fetch_dir))
