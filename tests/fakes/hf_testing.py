"""Shared helpers of the stand-in hub's own tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.fakes.hf_client import ClientRun, hf_env, run_hf
from tests.fakes.hf_hub import FakeHub

MIB = 1024 * 1024


async def client(
    hub: FakeHub, home: Path, snippet: str, *, token: str | None = None, xet: bool = False
) -> ClientRun:
    return await run_hf(snippet, hf_env(hub.url, home, token=token, disable_xet=not xet))


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
