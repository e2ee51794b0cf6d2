"""Run the real clients (pip, uv) as subprocesses without blocking the test's event loop."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

CLIENT_TIMEOUT = 180.0


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def said(self) -> str:
        """The output with runs of white space folded to one space: uv wraps long messages
        at a width that depends on what precedes them (ports, paths), so check text here."""
        return " ".join(self.output.split())


def client_env(home: Path) -> dict[str, str]:
    """A minimal environment: no user or machine configuration leaks into the clients."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "AIRLOCK_", "HF_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        {
            "HOME": str(home),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(home / "uv-cache"),
            "NO_COLOR": "1",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


async def run(*argv: str, env: dict[str, str], timeout: float = CLIENT_TIMEOUT) -> Run:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def uv_bin() -> str:
    candidate = Path(sys.executable).parent / "uv"
    if candidate.exists():
        return str(candidate)
    from uv import find_uv_bin

    return str(find_uv_bin())


async def pip_install(
    index_url: str, *reqs: str, target: Path, home: Path, extra: tuple[str, ...] = ()
) -> Run:
    return await run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--index-url",
        index_url,
        "--target",
        str(target),
        *extra,
        *reqs,
        env=client_env(home),
    )


async def uv_install(
    index_url: str, *reqs: str, target: Path, home: Path, extra: tuple[str, ...] = ()
) -> Run:
    return await run(
        uv_bin(),
        "pip",
        "install",
        "--no-cache",
        "--python",
        sys.executable,
        "--index-url",
        index_url,
        "--target",
        str(target),
        *extra,
        *reqs,
        env=client_env(home),
    )
