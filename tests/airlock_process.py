"""A real ``airlock serve`` process on port 0, for tests of the command itself.

    async with airlock_serve(tmp_path) as proc:
        proc.url             # http://127.0.0.1:<the port it bound>, read from airlock_started
        proc.events          # every stderr line so far, parsed (JSON log format)
    proc.lines               # after the block: every line it wrote (the process has exited)

The port is never picked by the test: the proxy binds port 0 and its ``airlock_started``
event names the port it got.  The process is stopped with SIGTERM and awaited.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.hf_proxy import copy_policies

START_TIMEOUT = 120.0  # a fail-safe: the wait ends when the event arrives


@dataclass
class AirlockProcess:
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    started: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.started['port']}"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "HF_"))}
    env |= {
        "AIRLOCK_STORE__PATH": str(tmp_path / "store"),
        "AIRLOCK_POLICY__PATH": str(copy_policies(tmp_path / "policies")),
        "AIRLOCK_POLICY__RELOAD_INTERVAL": "0",
        "AIRLOCK_LOG__FORMAT": "json",
        # Nothing here may reach the internet: the upstreams are loopback ports that refuse.
        "AIRLOCK_PYPI__OFFLINE": "true",
        "AIRLOCK_HF__OFFLINE": "true",
    }
    return env | extra


async def _read(stream: asyncio.StreamReader, out: AirlockProcess, ready: asyncio.Event) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip("\n")
        out.lines.append(text)
        if not out.started and '"airlock_started"' in text:
            out.started = json.loads(text)
            ready.set()
    ready.set()  # exited (or closed stderr) without starting


async def run_airlock(*args: str, env: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """``python -m proxy ARGS`` to the end: exit code, stdout lines, stderr lines."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines(), err.decode().splitlines()


@asynccontextmanager
async def airlock_serve(tmp_path: Path, *args: str, **env: str) -> AsyncIterator[AirlockProcess]:
    """``airlock serve --port 0 ARGS`` with JSON logs (stdout and stderr both collected)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        env=serve_env(tmp_path, **env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    out = AirlockProcess(proc)
    ready = asyncio.Event()
    reader = asyncio.create_task(_read(proc.stdout, out, ready))
    try:
        await asyncio.wait_for(ready.wait(), START_TIMEOUT)
        assert out.started, "\n".join(out.lines)
        yield out
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), START_TIMEOUT)
        await reader
