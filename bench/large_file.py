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
Only 127.0.0.1 is ever contacted.

usage: .venv/bin/python bench/large_file.py --sizes 1G,10G --workdir /tmp/airlock-large
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
AIRLOCK = REPO / ".venv" / "bin" / "airlock"
PROJECT = "bigpkg"
FILENAME = "bigpkg-1.0-py3-none-any.whl"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
UPLOAD_TIME = "2020-01-01T00:00:00.000000Z"  # years old: the default 7-day cooldown passes
HASH_BLOCK = 8 * 1024 * 1024
READ_BUFSIZE = 4 * 1024 * 1024
MARGIN = 1 << 30  # free disk kept beyond the stored blob
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
PROXY_ENV_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class BenchError(Exception):
    pass


@dataclass
class Run:
    case: str
    size: int
    page_s: float = 0.0
    ttfb_s: float = 0.0
    total_s: float = 0.0
    received: int = 0
    sha256_ok: bool = False
    proxy_rss_start_kib: int | None = None
    proxy_hwm_kib: int | None = None
    proxy_rss_after_kib: int | None = None
    proxy_cpu_s: float | None = None  # user + system CPU the proxy spent during the download

    @property
    def mib_s(self) -> float:
        return self.received / (1 << 20) / self.total_s if self.total_s else 0.0


@dataclass
class SizeResult:
    label: str
    size: int
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""
    engine: str = ""
    file_decisions: list[str] = field(default_factory=list)


# -- sizes, payload ---------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


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


# -- child processes ----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRLOCK_") and k.lower() not in PROXY_ENV_VARS
    }
    env["GOGC"] = os.environ.get("GOGC", "400")
    env["GOMEMLIMIT"] = os.environ.get("GOMEMLIMIT", "192MiB")
    return env


async def start_upstream(payload: Path, sha256: str, size: int) -> tuple[Any, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--serve-upstream",
        str(payload),
        sha256,
        str(size),
        stdout=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line.startswith(b"PORT "):
        await stop_process(proc)
        raise BenchError(f"the upstream did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, port: int, store: Path, upstream: str, policies: Path) -> None:
    path.write_text(
        "\n".join(
            [
                "[server]",
                'host = "127.0.0.1"',
                f"port = {port}",
                "[store]",
                f"path = {json.dumps(str(store))}",
                "[[pypi.upstreams]]",
                'name = "bench"',
                f'url = "{upstream}/simple/"',
                'kind = "public"',
                "[policy]",
                f"path = {json.dumps(str(policies))}",
                "reload_interval = 0.0",
                "[log]",
                'format = "json"',
                'level = "info"',
                "",
            ]
        ),
        encoding="utf-8",
    )


async def start_proxy(config: Path, port: int, log: Path, cwd: Path) -> Any:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            str(AIRLOCK),
            "serve",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=child_env(),
            cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise BenchError(f"airlock serve exited with {proc.returncode}; see {log}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return proc
            await asyncio.sleep(0.2)
    await stop_process(proc)
    raise BenchError(f"airlock serve was not ready within 120 s; see {log}")


async def stop_process(proc: Any) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def read_log(path: Path, result: SizeResult) -> None:
    """The policy engine the proxy used and its decisions on the file, from its JSON log."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if ev.get("event") == "airlock_started":
                    result.engine = str(ev.get("policy_engine", ""))
                elif ev.get("event") == "decision" and ev.get("action") == "file":
                    rules = ",".join(ev.get("rules") or []) or "no rule"
                    warn = len(ev.get("warnings") or [])
                    result.file_decisions.append(f"{ev.get('outcome')} ({rules}, {warn} warnings)")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, our own child)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


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


def human(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} B"


def mib(kib: int | None) -> str:
    return "" if kib is None else f"{kib / 1024:.0f} MiB"


def table(results: list[SizeResult]) -> str:
    rows = [
        "| size | path | TTFB | total | throughput | proxy RSS at start | proxy peak (VmHWM) "
        "| proxy CPU | sha256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if res.skipped:
            rows.append(f"| {human(res.size)} | skipped: {res.skipped} | | | | | | | |")
            continue
        for r in res.runs:
            cpu = "" if r.proxy_cpu_s is None else f"{r.proxy_cpu_s:.1f} s"
            ok = "ok" if r.sha256_ok else f"MISMATCH ({r.received} bytes)"
            rows.append(
                f"| {human(r.size)} | {r.case} | {r.ttfb_s * 1000:.1f} ms | {r.total_s:.2f} s "
                f"| {r.mib_s:.0f} MiB/s | {mib(r.proxy_rss_start_kib)} "
                f"| {mib(r.proxy_hwm_kib)} | {cpu} | {ok} |"
            )
    return "\n".join(rows)


def machine(workdir: Path) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        mem = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    du = shutil.disk_usage(workdir)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_total": mem,
        "workdir_free_gib": round(du.free / 2**30, 1),
        "workdir_size_gib": round(du.total / 2**30, 1),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "kernel": platform.release(),
        "loadavg_start": loadavg(),
    }


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
