"""The 0.x client (the series transformers 4.x pins) through the proxy, from its own
environment (``make hf0`` creates ``.venv-hf0``; without it these tests fail and say so)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.hf_client import ClientRun, hf0_python, hf_env, run_hf
from tests.fakes.hf_fixtures import BIG_FILE, BIG_MODEL, DATASET, MODEL
from tests.fakes.hf_http import DropRule
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy

MIB = 1024 * 1024
SIZE = 24 * MIB + 321


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=SIZE) as running:
        running.mode.lfs_redirect = True
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url, ttl=0.0, egress_allow=(hub.cdn_url,)) as running:
        yield running


async def client0(proxy: HfProxy, home: Path, snippet: str) -> ClientRun:
    """*snippet* on the 0.x client, which it first checks it is (result/error as usual)."""
    guard = "import huggingface_hub as _h\nassert _h.__version__.startswith('0.'), _h.__version__\n"
    code = guard + textwrap.dedent(snippet)
    run = await run_hf(code, hf_env(proxy.endpoint, home), python=hf0_python())
    assert run.error is None or not run.error.is_a("AssertionError"), run.error
    return run


async def test_client0_downloads_snapshots_and_sees_block_reasons(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """By sha (regular + LFS), snapshots by sha, a branch refused with the commit to pin."""
    sha, dsha = hub.commit_sha(MODEL), hub.commit_sha(DATASET, repo_type="dataset")
    run = await client0(
        proxy,
        tmp_path,
        f"""
        def files(root):
            found = [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]
            return {{os.path.relpath(p, root): read_hex(p) for p in found}}
        result = {{
            "version": hf.__version__,
            "weights": read_hex(download({MODEL!r}, "model.safetensors", revision={sha!r})),
            "model": files(hf.snapshot_download({MODEL!r}, revision={sha!r}, cache_dir=cache_dir)),
            "dataset": files(hf.snapshot_download({DATASET!r}, repo_type="dataset",
                                                  revision={dsha!r}, cache_dir=cache_dir)),
        }}
        try:
            download({MODEL!r}, "config.json")
        except Exception as e:
            result["blocked"] = [type(e).__name__, str(e)]
        """,
    )
    out = run.ok()
    assert out["version"].startswith("0.")
    assert bytes.fromhex(out["weights"]) == hub.expect(MODEL, "model.safetensors").content()
    assert {p: bytes.fromhex(h) for p, h in out["model"].items()} == {
        p: f.read() for p, f in hub.repo(MODEL).head.files.items()
    }
    assert {p: bytes.fromhex(h) for p, h in out["dataset"].items()} == {
        p: f.read() for p, f in hub.repo(DATASET, "dataset").head.files.items()
    }
    kind, message = out["blocked"]
    assert kind == "GatedRepoError"
    assert f"Blocked by policy: revision 'main' of {MODEL} is a branch or tag" in message
    assert f'revision="{sha}"' in message


async def test_client0_resumes_on_its_next_run_after_a_cut(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    """A failed fill cuts the 0.x client, which keeps `.incomplete` and resumes with Range."""
    hub.mode.drop = DropRule(path=BIG_FILE, after_bytes=5 * MIB + 5, times=4, server="cdn")
    expected = hub.expect(BIG_MODEL, BIG_FILE)
    snippet = f"""
        import hashlib, glob
        try:
            path = download({BIG_MODEL!r}, {BIG_FILE!r}, revision={expected.commit!r})
        except Exception as e:
            partial = glob.glob(os.path.join(cache_dir, "**", "*.incomplete"), recursive=True)
            result = ["cut", type(e).__name__, [os.path.getsize(p) for p in partial]]
        else:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            result = ["done", digest.hexdigest(), os.path.getsize(path)]
    """
    first = (await client0(proxy, tmp_path, snippet)).ok()
    assert first[0] == "cut", first
    assert first[2], first
    assert 0 < first[2][0] < expected.size
    second = (await client0(proxy, tmp_path, snippet)).ok()
    assert second == ["done", expected.sha256, expected.size]


async def test_client0_namespace_reuse_reason(hub: FakeHub, proxy: HfProxy, tmp_path: Path) -> None:
    environ = dict(os.environ)
    old = hub.commit_sha(MODEL)
    snippet = f"result = read_hex(download({MODEL!r}, 'config.json', revision={old!r}))"
    (await client0(proxy, tmp_path / "a", snippet)).ok()
    fresh = hub.recreate_repo(MODEL)
    run = await client0(
        proxy,
        tmp_path / "b",
        f"result = download({MODEL!r}, 'config.json', revision={fresh.head.oid!r})",
    )
    assert run.error is not None
    assert run.error.is_a("GatedRepoError")
    assert "possible namespace reuse" in run.error.message
    assert dict(os.environ) == environ  # nothing leaked into the test process
