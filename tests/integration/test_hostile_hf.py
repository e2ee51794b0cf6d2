"""A hostile hub behind the proxy: wrong, swapped, resized, cut, stalled and gzip'd file bodies.

Each real client generation (huggingface_hub 2.x from .venv, 1.33 from .venv-hf1, 0.36 from
.venv-hf0) downloads every file of one repo through the proxy twice with the same cache (the
second run completes what the first left `.incomplete`).  The required outcome per file: a
client error or the right bytes, never wrong bytes kept in the client's cache; nothing wrong
in the proxy's store; the proxy's log names each file whose upstream bytes were refused.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hostile import HostileUpstream
from tests.fakes.hostile_hub import (
    FILES,
    WRONG_CONTENT,
    Truth,
    download_all,
    hostile_repo,
    hostile_rules,
    store_problems,
    wrong_kept,
)

# seconds without upstream bytes before the proxy gives up on a transfer (and resumes it): the
# stalled body needs it short; all servers share the test's event loop, so not too short
STALL_TIMEOUT = 3.0


def _refusals(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    """Log events (not access lines) that name `name` and say why its bytes were refused."""
    words = ("verif", "sha", "size", "bytes")
    return [
        e
        for e in logs
        if e.get("event") != "access"
        and name in str(e)
        and any(w in str(e.get("reason", "")) + str(e.get("reasons", "")) for w in words)
    ]


@pytest.mark.parametrize("generation", ["2", "1", "0"])
async def test_hostile_hub_bodies_end_in_an_error_or_the_right_bytes(
    generation: str, tmp_path: Path
) -> None:
    repo = hostile_repo()
    truth = Truth.of(repo)
    home = tmp_path / "client"
    async with start_fake_hub(repos=[repo]) as hub, HostileUpstream(hub.url).running() as bad:
        for rule in hostile_rules():
            bad.tamper(rule)
        with capture_logs() as logs:
            async with hf_proxy(tmp_path, bad.url, timeout=STALL_TIMEOUT) as proxy:
                first = await download_all(proxy.endpoint, home, generation, repo.head.oid)
                second = await download_all(proxy.endpoint, home, generation, repo.head.oid)
    problems = [f"run 1: {p}" for p in wrong_kept(first, truth)]
    problems += [f"run 2: {p}" for p in wrong_kept(second, truth)]
    problems += await store_problems(tmp_path / "store", set(truth.sha256.values()))
    assert problems == [], "\n".join(problems)
    # every attack was actually made (one tampered fetch at least per file) ...
    assert all(r.done for r in bad.rules), [(r.match, r.done) for r in bad.rules]
    # ... and once the upstream is honest again (one bad fetch per file; wrong3 needs 3) the
    # proxy has not poisoned itself: the second run gets everything right
    once = [n for n in FILES if n != "wrong3.parquet"]
    assert {n: second["files"][n][0] for n in once} == dict.fromkeys(once, "ok"), second
    missing = [n for n in sorted(WRONG_CONTENT) if not _refusals(logs, n)]
    assert missing == [], f"no log event says why these were refused: {missing}"
