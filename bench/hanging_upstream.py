#!/usr/bin/env python3
"""A fully cached install while the upstream hangs, against the same install while it answers.

Starts the test suite's stand-in index (``tests/fakes/pypi_index.py``, 127.0.0.1, port 0)
serving one application that depends on ``--deps`` small libraries, and the proxy in-process
in front of it (a fresh store, the shipped policies, ``page_ttl = 1``).  Then, for pip and uv
(no client cache, so every request reaches the proxy):

1. cold: the first install fills the store;
2. warm: after the pages' TTL has passed, the install again while the upstream answers (the
   pages are revalidated: 304s);
3. hanging: the upstream now accepts every request and never answers; after the TTL has passed
   again, the same install (everything it needs is stored).

Warm and hanging runs are repeated ``--repeat`` times (the median is shown).

It prints the times and the ratio hanging / warm as a Markdown table.  Only 127.0.0.1 is ever
contacted.

usage: .venv/bin/python bench/hanging_upstream.py [--deps 8] [--repeat 5] [--client-timeout 900]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import structlog
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.app import create_app  # noqa: E402
from proxy.settings import (  # noqa: E402
    PolicySettings,
    PypiSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
)
from tests.clients import client_env, run, uv_bin  # noqa: E402
from tests.fakes.dists import wheel  # noqa: E402
from tests.fakes.pypi_index import FakeIndex  # noqa: E402

TTL = 1.0


def _argv(client: str, index_url: str, target: Path) -> list[str]:
    if client == "pip":
        return [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--index-url",
                index_url, "--target", str(target), "hangbench-app"]  # fmt: skip
    return [uv_bin(), "pip", "install", "--no-cache", "--python", sys.executable,
            "--index-url", index_url, "--target", str(target), "hangbench-app"]  # fmt: skip


async def _install(client: str, index_url: str, work: Path, label: str, limit: float) -> str:
    target = work / f"{client}-{label}"
    start = time.perf_counter()
    done = await run(
        *_argv(client, index_url, target), env=client_env(work / "home"), timeout=limit
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        last = done.output.strip().splitlines()[-3:]
        print(f"{client} {label} failed after {took:.1f}s: {' / '.join(last)}", file=sys.stderr)
        return f"{took:.2f} s (failed)"
    return f"{took:.2f} s"


async def main(deps: int, limit: float, repeat: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    index = FakeIndex()
    libs = [f"hangbench-lib{i}" for i in range(deps)]
    for lib in libs:
        index.add(wheel(lib, "1.0"))
    index.add(wheel("hangbench-app", "1.0", requires=tuple(libs)))
    with tempfile.TemporaryDirectory(prefix="airlock-hang-") as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "policies", work / "policies")
        async with index.running():
            settings = Settings(
                store=StoreSettings(path=work / "store"),
                pypi=PypiSettings(
                    upstreams=(UpstreamSettings(name="bench", url=index.simple_url),),
                    page_ttl=TTL,
                ),
                policy=PolicySettings(path=work / "policies", reload_interval=0),
            )
            runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/pypi/simple/"
            rows: dict[str, dict[str, str]] = {"pip": {}, "uv": {}}
            try:
                for client, row in rows.items():
                    row["cold"] = await _install(client, url, work, "cold", limit)
                for phase in ("warm", "hanging"):
                    index.faults.hang = phase == "hanging"
                    for client, row in rows.items():
                        took = []
                        for i in range(repeat):
                            await asyncio.sleep(TTL * 1.2)  # every page past its TTL
                            took.append(await _install(client, url, work, f"{phase}{i}", limit))
                        row[phase] = sorted(took, key=lambda t: float(t.split()[0]))[repeat // 2]
            finally:
                await runner.cleanup()
    print(
        f"\n{deps + 1} projects, page_ttl = {TTL} s, median of {repeat} run(s) per warm phase, "
        "upstream hanging in the last column\n"
    )
    print("| client | cold | warm (upstream answers) | warm (upstream hangs) | hangs / warm |")
    print("|---|---|---|---|---|")
    for client, r in rows.items():
        ratio = float(r["hanging"].split()[0]) / float(r["warm"].split()[0])
        print(f"| {client} | {r['cold']} | {r['warm']} | {r['hanging']} | {ratio:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deps", type=int, default=8)
    parser.add_argument("--client-timeout", type=float, default=900.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per phase (median shown)")
    args = parser.parse_args()
    asyncio.run(main(args.deps, args.client_timeout, args.repeat))
