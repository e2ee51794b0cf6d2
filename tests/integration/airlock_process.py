"""``airlock serve`` as its own process on port 0, and the ``airlock`` command for its store.

The port is read back from the kernel: the listening TCP socket among the process's open
files (``/proc/PID/fd`` and ``/proc/PID/net/tcp``), so the test needs no port picked in
advance and nothing from the server's output format.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.clients import Run, run

READY_TIMEOUT = 120.0  # a way out for a server that never listens, not a measurement
LISTEN = "0A"


def airlock_env(**settings: str) -> dict[str, str]:
    """This environment without AIRLOCK_ variables, plus *settings* (``store__path=...``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "HF_"))}
    env.update({f"AIRLOCK_{k.upper()}": v for k, v in settings.items()})
    return env


async def airlock(*args: str, env: dict[str, str], timeout: float = 120.0) -> Run:
    return await run(sys.executable, "-m", "proxy", *args, env=env, timeout=timeout)


def listening_port(pid: int) -> int | None:
    """The TCP port *pid* listens on, or None while it listens on none."""
    sockets = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                sockets.add(target[len("socket:[") : -1])
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in table:
        fields = line.split()
        if fields[3] == LISTEN and fields[9] in sockets:
            return int(fields[1].rsplit(":", 1)[1], 16)
    return None


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@asynccontextmanager
async def serving(env: dict[str, str], log: Path) -> AsyncIterator[Served]:
    """``airlock serve --port 0`` until the block ends (then terminated, unless it exited)."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", "--port", "0", env=env, stdout=sink, stderr=sink
        )
    try:
        port = await _wait_listening(proc, log)
        yield Served(proc, f"http://127.0.0.1:{port}", log)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _wait_listening(proc: asyncio.subprocess.Process, log: Path) -> int:
    """Poll the process's sockets (nothing to wait on) until it listens or exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"airlock serve exited {proc.returncode}: {_tail(log)}")
        port = listening_port(proc.pid)
        if port is not None:
            return port
        await asyncio.sleep(0.05)
    raise AssertionError(f"airlock serve never listened: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]
