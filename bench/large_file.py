#!/usr/bin/env python3
"""Large files through airlock: time to first byte, total time and the proxy's peak RSS.

For each size (binary units: 1G = 2**30 bytes) the script

* makes a sparse payload file in the workdir (hashing it costs the same as real bytes) and
  caches its sha256 next to it, so reruns start at once;
* starts a tiny upstream index on 127.0.0.1 (its own process, port 0, read back) serving a
  PEP 691 JSON page for ``bigpkg`` that lists one wheel with its sha256, size and an old
  upload-time, and the wheel itself from disk (FileResponse: Content-Length, sendfile);
* starts a fresh ``airlock serve`` (its own config and empty store in the workdir, the shipped
  policies, ``GOGC=400 GOMEMLIMIT=192MiB`` as ``make serve`` does) with that index as its only
  upstream;
* downloads the way pip does (project page first, then the file URL the page gives), reading
  the body in chunks, hashing it off the event loop and discarding it: (a) straight from the
  upstream, (b) through the fresh proxy (cold: it fetches, verifies and stores while
  streaming), (c) through the same proxy again (warm: from the store, sendfile);
* samples the proxy's VmRSS when it is ready and its VmHWM after each download (the peak is
  reset before the warm run through /proc/<pid>/clear_refs, so each row has its own peak).

It prints a Markdown table and writes the same results as JSON (and the table) in the workdir.
Only 127.0.0.1 is ever contacted. The payload and the upstream index are in
large_file_upstream.py, the child processes (upstream, proxy) and their /proc figures in
large_file_procs.py, the results and their table in large_file_report.py.

usage: .venv/bin/python bench/large_file.py --sizes 1G,10G --workdir /tmp/airlock-large
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from large_file_procs import (
    BenchError,
    cpu_seconds,
    free_port,
    proc_status,
    read_log,
    reset_peak,
    start_proxy,
    start_upstream,
    stop_process,
    write_config,
)
from large_file_report import Run, SizeResult, loadavg, machine, table
from large_file_upstream import (
    FILENAME,
    JSON_TYPE,
    PROJECT,
    UPLOAD_TIME,
    allocated,
    make_payload,
    serve_upstream,
)

REPO = Path(__file__).resolve().parent.parent
READ_BUFSIZE = 4 * 1024 * 1024
MARGIN = 1 << 30  # free disk kept beyond the stored blob
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


# -- sizes ----------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


# -- the client -----------------------------------------------------------------------------------


async def download(
    session: aiohttp.ClientSession, index: str, run: Run, sha256: str, pool: ThreadPoolExecutor
) -> None:
    """Page, then the file the page names; body hashed in a thread, one chunk in flight."""
    loop = asyncio.get_running_loop()
    page_url = f"{index}{PROJECT}/"
    t0 = time.perf_counter()
    async with session.get(page_url, headers={"Accept": JSON_TYPE}) as r:
        if r.status != 200:
            raise BenchError(f"{page_url}: {r.status} {(await r.text())[:300]}")
        page = await r.json(content_type=None)
    run.page_s = time.perf_counter() - t0
    entry = next((f for f in page["files"] if f["filename"] == FILENAME), None)
    if entry is None:
        raise BenchError(f"{page_url} does not list {FILENAME}")
    if entry.get("yanked"):
        raise BenchError(f"{FILENAME} is refused on the page: {entry['yanked']}")
    url = urljoin(page_url, entry["url"])
    h = hashlib.sha256()
    pending: asyncio.Future[None] | None = None
    t1 = time.perf_counter()
    async with session.get(url) as r:
        if r.status != 200:
            raise BenchError(f"{url}: {r.status} {(await r.text())[:300]}")
        while chunk := await r.content.readany():
            if not run.received:
                run.ttfb_s = time.perf_counter() - t1
            run.received += len(chunk)
            if pending is not None:
                await pending
            pending = loop.run_in_executor(pool, h.update, chunk)
        if pending is not None:
            await pending
    run.total_s = time.perf_counter() - t1
    run.sha256_ok = run.received == run.size and h.hexdigest() == sha256


# -- one size -------------------------------------------------------------------------------------


async def bench_size(
    label: str, size: int, workdir: Path, policies: Path, pool: ThreadPoolExecutor
) -> SizeResult:
    result = SizeResult(label, size)
    payload = workdir / f"payload-{label}.bin"
    store = workdir / f"store-{label}"
    await asyncio.to_thread(shutil.rmtree, store, True)
    need = size + MARGIN  # the payload is sparse: only the stored blob takes disk
    free = (await asyncio.to_thread(shutil.disk_usage, workdir)).free
    if free < need:
        result.skipped = (
            f"the stored blob needs {need / 2**30:.1f} GiB free, {free / 2**30:.1f} are"
        )
        return result

    t = time.perf_counter()
    sha256, hashed = await asyncio.to_thread(make_payload, payload, size)
    how = f"hashed in {time.perf_counter() - t:.1f} s" if hashed else "sha256 from the cache"
    log(f"{label}: payload {payload} (sparse, {allocated(payload)} bytes on disk), {how}")

    upstream, up_url = await start_upstream(payload, sha256, size)
    proxy = None
    proxy_log = workdir / f"airlock-{label}.log"
    await asyncio.to_thread(proxy_log.unlink, True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=1800)
    try:
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=READ_BUFSIZE) as s:
            run = Run("upstream directly", size)
            await download(s, f"{up_url}/simple/", run, sha256, pool)
            result.runs.append(run)
            log(f"{label}: {run.case}: {run.total_s:.2f} s")

        port = free_port()
        config = workdir / f"airlock-{label}.toml"
        write_config(config, port, store, up_url, policies)
        proxy = await start_proxy(config, port, proxy_log, workdir)
        index = f"http://127.0.0.1:{port}/pypi/simple/"
        for case, warm in (
            ("airlock cold (fresh proxy, empty store)", False),
            ("airlock warm (same proxy)", True),
        ):
            if warm and not await asyncio.to_thread(reset_peak, proxy.pid):
                log("could not reset VmHWM: the warm peak includes the cold run")
            st = await asyncio.to_thread(proc_status, proxy.pid)
            run = Run(case, size, proxy_rss_start_kib=st["VmRSS"])
            cpu0 = await asyncio.to_thread(cpu_seconds, proxy.pid)
            async with aiohttp.ClientSession(timeout=timeout, read_bufsize=READ_BUFSIZE) as s:
                await download(s, index, run, sha256, pool)
            st = await asyncio.to_thread(proc_status, proxy.pid)
            run.proxy_hwm_kib, run.proxy_rss_after_kib = st["VmHWM"], st["VmRSS"]
            run.proxy_cpu_s = await asyncio.to_thread(cpu_seconds, proxy.pid) - cpu0
            result.runs.append(run)
            log(f"{label}: {case}: {run.total_s:.2f} s, VmHWM {run.proxy_hwm_kib} kB")
    finally:
        if proxy is not None:
            await stop_process(proxy)
            await asyncio.to_thread(read_log, proxy_log, result)
        await stop_process(upstream)
        await asyncio.to_thread(shutil.rmtree, store, True)  # the stored blob: free the disk
    return result


# -- output ---------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def main(args: argparse.Namespace, workdir: Path) -> int:
    sizes = [(s.strip(), parse_size(s)) for s in args.sizes.split(",") if s.strip()]
    facts = await asyncio.to_thread(machine, workdir)
    policies = REPO / "policies"
    policy_note = (
        "shipped policies/ unchanged (engine auto); the file passes the default rules "
        f"(upload-time {UPLOAD_TIME}, so the 7-day cooldown allows it)"
    )
    if args.policy_data:
        override = json.loads(args.policy_data)
        policies = workdir / "policies"
        await asyncio.to_thread(shutil.rmtree, policies, True)
        await asyncio.to_thread(shutil.copytree, REPO / "policies", policies)
        data_file = policies / "data" / "pypi.json"
        data = json.loads(data_file.read_text(encoding="utf-8"))
        data.update(override)
        data_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
        policy_note = f"copy of policies/ with data/pypi.json overridden by {args.policy_data}"
    log(f"machine: {facts}")
    results = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        for label, size in sizes:
            results.append(await bench_size(label, size, workdir, policies, pool))

    facts["loadavg_end"] = await asyncio.to_thread(loadavg)
    md = "\n".join(
        [
            table(results),
            "",
            f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['mem_total']} RAM, "
            f"{facts['workdir_free_gib']} GiB free of {facts['workdir_size_gib']} GiB at "
            f"{workdir} before the run; load average {facts['loadavg_start']} at the start, "
            f"{facts['loadavg_end']} at the end; Python {facts['python']}, "
            f"aiohttp {facts['aiohttp']}",
            f"policy: {policy_note}",
            "payload: sparse file (zeros), served by a local aiohttp upstream (FileResponse) in "
            "its own process; client: aiohttp, page then file, body hashed and discarded; "
            "TTFB = file request sent -> first body byte; total = file request sent -> last "
            "byte; proxy started with GOGC=400 GOMEMLIMIT=192MiB; the warm row's peak is "
            "measured after resetting VmHWM (clear_refs) at its start",
        ]
    )
    decided = "; ".join(
        f"{res.label}: engine {res.engine}, file decisions {', '.join(res.file_decisions)}"
        for res in results
        if not res.skipped
    )
    md += f"\nproxy log: {decided}"
    print(md)
    out = {
        "machine": facts,
        "policy": policy_note,
        "results": [
            {**asdict(res), "runs": [{**asdict(r), "mib_s": r.mib_s} for r in res.runs]}
            for res in results
        ],
    }
    (workdir / "large_file-results.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    (workdir / "large_file-results.md").write_text(md + "\n", encoding="utf-8")
    log(f"results: {workdir / 'large_file-results.json'}, {workdir / 'large_file-results.md'}")
    ok = all(r.sha256_ok for res in results for r in res.runs)
    return 0 if ok else 1


def cli() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-upstream":
        asyncio.run(serve_upstream(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1G,10G", help="comma-separated, binary units (1G = 2**30)")
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "airlock-large"))
    p.add_argument(
        "--policy-data",
        default="",
        help="JSON merged over policies/data/pypi.json in a copy of policies/ "
        '(e.g. \'{"typosquat": {"deny_score": 0.8, "warn_score": 0.6, "exempt": ["bigpkg"]}}\')',
    )
    args = p.parse_args()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(main(args, workdir))
    except BenchError as e:
        log(f"error: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(cli())
