"""The airlock command: fsck quarantines corrupted blobs, gc removes orphans, bad input is clear."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import aiohttp

from mirror_store.blobs import LocalBlobStore
from tests.clients import run
from tests.conftest import Proxy
from tests.fakes.pypi_index import FakeIndex

WHL = "tiny_lib-1.1-py3-none-any.whl"


async def airlock(*args: str, cwd_env: dict[str, str] | None = None) -> tuple[int, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    env.update(cwd_env or {})
    r = await run(sys.executable, "-m", "proxy", *args, env=env)
    return r.returncode, r.output


async def _download(proxy: Proxy) -> bytes:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/") as r:
            assert r.status == 200
        async with s.get(proxy.url + "/pypi/files/tiny-lib/" + WHL) as r:
            assert r.status == 200
            return await r.read()


async def test_fsck_quarantines_a_corrupted_blob_and_it_is_refetched(
    proxy: Proxy, fake_index: FakeIndex
) -> None:
    data = await _download(proxy)
    digest = hashlib.sha256(data).hexdigest()
    store = LocalBlobStore(proxy.settings.store.path)
    path = store.path(digest)  # type: ignore[arg-type]
    assert path is not None
    path.write_bytes(b"rotten" + data[6:])
    env = {"AIRLOCK_STORE__PATH": str(proxy.settings.store.path)}

    code, out = await airlock("store", "fsck", "--dry-run", cwd_env=env)
    assert code == 1
    assert f"BAD {digest}" in out
    assert path.exists()

    code, out = await airlock("store", "fsck", cwd_env=env)
    assert code == 1
    assert f"QUARANTINED {digest}" in out
    assert not path.exists()
    assert (proxy.settings.store.path / "quarantine" / "sha256" / digest).exists()

    code, out = await airlock("store", "fsck", cwd_env=env)
    assert code == 0, out
    assert await _download(proxy) == data  # fetched again and verified
    assert fake_index.requests["/files/" + WHL] == 2


async def test_gc_removes_only_unreferenced_blobs(proxy: Proxy) -> None:
    data = await _download(proxy)
    store = LocalBlobStore(proxy.settings.store.path)
    w = store.writer({})
    w.write(b"orphan")
    orphan = w.commit()
    env = {"AIRLOCK_STORE__PATH": str(proxy.settings.store.path)}
    code, out = await airlock("store", "gc", "--min-age", "0", cwd_env=env)
    assert code == 0, out
    assert f"removed {orphan}" in out
    assert store.path(orphan) is None
    assert store.path(hashlib.sha256(data).hexdigest()) is not None  # type: ignore[arg-type]


async def test_every_verb_has_help() -> None:
    for verb in (["serve"], ["store", "fsck"], ["store", "gc"], ["policy", "check"], []):
        code, out = await airlock(*verb, "--help")
        assert code == 0
        assert "usage: airlock" in out


async def test_bad_config_is_reported_before_start(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text("[server]\nport = 'eighty'\n")
    code, out = await airlock("serve", "--config", str(cfg))
    assert code == 2
    assert "server.port: expected an integer" in out


async def test_serve_refuses_an_invalid_policy(tmp_path: Path) -> None:
    pol = tmp_path / "pol"
    (pol / "data").mkdir(parents=True)
    (pol / "pypi.rego").write_text("package airlock.pypi\n\nimport rego.v1\n\ndecision := {\n")
    code, out = await airlock(
        "serve",
        "--port",
        "0",
        cwd_env={"AIRLOCK_POLICY__PATH": str(pol), "AIRLOCK_STORE__PATH": str(tmp_path / "s")},
    )
    assert code == 2
    assert "pypi.rego" in out
    assert "invalid" in out
