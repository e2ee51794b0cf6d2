"""The child processes of bench/large_file.py: the upstream index (large_file.py
``--serve-upstream``, see large_file_upstream.py) and a fresh ``airlock serve`` with its own
config, started with ``GOGC=400 GOMEMLIMIT=192MiB`` as ``make serve`` does; and what is read
about the proxy from /proc (VmRSS, VmHWM and its reset, CPU time) and from its JSON log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from large_file_report import SizeResult

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().with_name("large_file.py")
AIRLOCK = REPO / ".venv" / "bin" / "airlock"
PROXY_ENV_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class BenchError(Exception):
    pass


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
