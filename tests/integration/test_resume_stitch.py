"""A resumed download never joins bytes that failed verification to verified ones (issue 11.1).

The first upstream GET of an LFS file returns the right length but other bytes.  airlock
streams all but the last byte, fails verification and cuts the client.  The client keeps what
it got and resumes with ``Range: bytes=N-`` (2.x and 1.x within the call, 0.x on its next run
from ``<etag>.incomplete``).  A verified tail behind that unverified head would be kept under
the good sha256; the proxy must answer such a resume with the whole verified body instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.fakes.hf_client import hf0_python, hf1_python, hf_env, run_hf
from tests.fakes.hf_fixtures import BIG_FILE, BIG_MODEL
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hostile import HostileUpstream, Tamper, evil_pickle

MIB = 1024 * 1024
SIZE = 24 * MIB + 321  # over two of the clients' 10 MiB write chunks: their resumes start > 0


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=SIZE) as running:
        yield running


def _kept(cache: Path) -> list[tuple[str, int]]:
    """(sha256, size) of every blob and partial blob the client left in its cache."""
    out = []
    for path in sorted((cache / "hub").rglob("blobs/*")):
        out.append((hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size))
    return out


def _snippet(commit: str) -> str:
    return f"""
        import hashlib
        path = download({BIG_MODEL!r}, {BIG_FILE!r}, revision={commit!r})
        with open(path, "rb") as f:
            result = [hashlib.sha256(f.read()).hexdigest(), os.path.getsize(path)]
    """


@pytest.mark.parametrize("client", ["2.x", "1.x"])
async def test_in_call_resume_after_a_swapped_body_gets_the_whole_verified_file(
    hub: FakeHub, tmp_path: Path, client: str
) -> None:
    """2.x/1.x resume within the call after the cut; the answer restarts them from zero."""
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    python = None if client == "2.x" else hf1_python()
    async with HostileUpstream(hub.url).running() as bad:
        rule = bad.tamper(Tamper(BIG_FILE, swap=evil_pickle(SIZE)))
        async with hf_proxy(tmp_path, bad.url) as proxy:
            with capture_logs() as logs:
                run = await run_hf(
                    _snippet(expected.commit), hf_env(proxy.endpoint, tmp_path), python=python
                )
    assert rule.done == 1  # the hostile body was sent once
    assert run.ok() == [expected.sha256, expected.size]
    assert _kept(tmp_path) == [(expected.sha256, expected.size)]
    resumes = [e for e in logs if e["event"] == "resume_refused"]
    assert resumes, "the client's resume into unverified bytes was not answered whole"
    assert all(0 < int(e["range"][6:-1]) <= e["unverified_upto"] for e in resumes)
    failed = [e for e in logs if e["event"] == "hf_fill_failed"]
    assert failed
    assert "verification failed" in failed[0]["reason"]


async def test_next_run_resume_after_a_restart_gets_the_whole_verified_file(
    hub: FakeHub, tmp_path: Path
) -> None:
    """0.x keeps the unverified head in `.incomplete`; after a proxy restart on the same store
    its next run resumes with Range and still gets a whole verified body, not the tail."""
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    env = hf_env("", tmp_path)
    store = tmp_path / "store"
    async with HostileUpstream(hub.url).running() as bad:
        bad.tamper(Tamper(BIG_FILE, swap=evil_pickle(SIZE)))
        async with hf_proxy(tmp_path, bad.url, store=store) as proxy:
            env["HF_ENDPOINT"] = proxy.endpoint
            first = await run_hf(_snippet(expected.commit), env, python=hf0_python())
        assert first.error is not None  # the cut transfer fails the run
        partial = [p for p in (tmp_path / "hub").rglob("*.incomplete") if p.stat().st_size]
        assert partial, "0.x left no partial download: the resume path is not exercised"
        async with hf_proxy(tmp_path, bad.url, store=store) as proxy:
            env["HF_ENDPOINT"] = proxy.endpoint
            with capture_logs() as logs:
                second = await run_hf(_snippet(expected.commit), env, python=hf0_python())
    assert second.ok() == [expected.sha256, expected.size]
    assert _kept(tmp_path) == [(expected.sha256, expected.size)]
    assert [e["event"] for e in logs if e["event"] == "resume_refused"] == ["resume_refused"]
