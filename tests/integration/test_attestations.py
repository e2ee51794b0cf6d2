"""Signed approvals end to end: files downloaded with real pip and the real huggingface_hub client
verify with ``airlock verify`` against the proxy's key; tampered files, tampered envelopes and
monitor-mode "approvals" fail; the key is private and survives a restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import sys
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from proxy.appkeys import SERVED_LOG
from proxy.settings import AccessSettings, ClientSettings, PolicySettings, UpstreamSettings
from proxy.trust.attest import PREDICATE_TYPE
from proxy.trust.dsse import verify
from proxy.trust.keys import key_path
from tests.clients import Run, client_env, run
from tests.conftest import Proxy, ProxyFactory
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo
from tests.fakes.pypi_index import FakeIndex
from tests.integration.test_bom import CREATED, MODEL, bom_repos

TOKEN = "ci-token-0123456789abcdef"
ACCESS = AccessSettings(anonymous="deny", clients=(ClientSettings(id="ci", token=TOKEN),))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RISKY = "acme/risky-model"
EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."  # a pickle calling os.system (only ever scanned)


async def airlock_verify(url: str, *args: str, token: str | None = TOKEN) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    if token:
        env["AIRLOCK_TOKEN"] = token
    return await run(sys.executable, "-m", "proxy", "verify", "--proxy", url, *args, env=env)


async def pip_download(proxy: Proxy, req: str, dest: Path, home: Path) -> list[Path]:
    index = proxy.simple.replace("http://", f"http://ci:{TOKEN}@")
    got = await run(
        sys.executable, "-m", "pip", "download", "--no-cache-dir", "--index-url", index,
        "-d", str(dest), req, env=client_env(home),
    )  # fmt: skip
    assert got.returncode == 0, got.output
    return sorted(await asyncio.to_thread(lambda: list(dest.iterdir())))


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def rewrite_envelope(store: Path, digest: str, change: str) -> None:
    """Alter the stored envelope of *digest* behind the proxy's back."""
    with sqlite3.connect(store / "metadata.sqlite3") as db:
        [(raw,)] = db.execute("SELECT envelope FROM attestations WHERE digest=?", (digest,))
        env = json.loads(raw)
        if change == "payload":
            statement = json.loads(base64.b64decode(env["payload"]))
            statement["predicate"]["policyRevision"] = "f" * 64
            env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        else:
            sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
            sig[-1] ^= 0x01
            env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        db.execute("UPDATE attestations SET envelope=? WHERE digest=?", (json.dumps(env), digest))


async def test_pip_downloads_verify_and_tampering_fails(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), access=ACCESS
    )
    files = await pip_download(proxy, "tiny-app", tmp_path / "dl", tmp_path)
    assert [f.name for f in files] == [
        "tiny_app-2.0-py3-none-any.whl",
        "tiny_lib-1.1-py3-none-any.whl",
    ]
    await proxy.app[SERVED_LOG].drain()
    lib = files[1]

    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/attestations/key", headers=AUTH) as r:
            assert r.status == 200
            pem = await r.read()
            served_keyid = r.headers["X-Airlock-Keyid"]
        async with s.get(proxy.url + "/attestations/key") as r:
            assert r.status == 401  # anonymous clients may not use this proxy at all
        async with s.get(f"{proxy.url}/attestations/{sha256(lib)}", headers=AUTH) as r:
            assert r.status == 200
            envelope = await r.json()
        async with s.get(f"{proxy.url}/attestations/{'0' * 64}", headers=AUTH) as r:
            assert r.status == 404
            assert "no attestation for sha256 " + "0" * 64 in (await r.json())["error"]
        async with s.get(f"{proxy.url}/attestations/not-a-digest", headers=AUTH) as r:
            assert r.status == 400
            assert "64 hex" in (await r.json())["error"]

    key = load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert served_keyid == hashlib.sha256(der).hexdigest()
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0]["keyid"] == served_keyid
    statement = json.loads(verify(envelope, key))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": lib.name, "digest": {"sha256": sha256(lib)}}]
    assert statement["predicateType"] == PREDICATE_TYPE
    predicate = statement["predicate"]
    assert (predicate["decision"], predicate["project"], predicate["version"]) == (
        "allow",
        "tiny-lib",
        "1.1",
    )
    assert (predicate["ecosystem"], predicate["upstream"]) == ("pypi", "fake")
    assert len(predicate["policyRevision"]) >= 40

    ok = await airlock_verify(proxy.url, *map(str, files))
    assert ok.returncode == 0, ok.output
    assert ok.stdout.count("OK   ") == 2
    nobody = await airlock_verify(proxy.url, str(lib), token=None)
    assert nobody.returncode == 1
    assert "401" in nobody.stdout

    # A tampered file, and a good file under another name, fail; the good one still passes.
    (tmp_path / "bad").mkdir()
    tampered = tmp_path / "bad" / lib.name
    tampered.write_bytes(lib.read_bytes() + b"\0")
    renamed = tmp_path / "bad" / "tiny_lib-9.9-py3-none-any.whl"
    shutil.copy(lib, renamed)
    mixed = await airlock_verify(proxy.url, str(lib), str(tampered), str(renamed))
    assert mixed.returncode == 1
    lines = mixed.stdout.splitlines()
    assert lines[0].startswith(f"OK   {lib}")
    assert lines[1].startswith(f"FAIL {tampered}: no approval from the proxy (404")
    assert lines[2].startswith(f"FAIL {renamed}: no approval")
    assert "under the name" in lines[2]

    # Requirements pins: every pin must be approved (or one per requirement with --any-hash).
    req = tmp_path / "requirements.txt"
    req.write_text(
        f"tiny-app==2.0 --hash=sha256:{sha256(files[0])}\n"
        f"tiny-lib==1.1 \\\n    --hash=sha256:{sha256(lib)}\n"
    )
    assert (await airlock_verify(proxy.url, "--requirements", str(req))).returncode == 0
    with req.open("a") as f:
        f.write(f"tiny-lib==1.1 --hash=sha256:{sha256(lib)} --hash=sha256:{'e' * 64}\n")
    strict = await airlock_verify(proxy.url, "-r", str(req))
    assert strict.returncode == 1
    assert f"FAIL tiny-lib==1.1 sha256:{'e' * 16}: no approval" in strict.stdout
    lenient = await airlock_verify(proxy.url, "-r", str(req), "--any-hash")
    assert lenient.returncode == 0, lenient.output
    assert "SKIP" in lenient.stdout

    # An envelope altered in the store (payload or signature) no longer verifies.
    for change in ("payload", "signature"):
        rewrite_envelope(proxy.settings.store.path, sha256(lib), change)
        forged = await airlock_verify(proxy.url, str(lib))
        assert forged.returncode == 1, change
        assert f"FAIL {lib}: bad signature" in forged.stdout, forged.stdout

    # The key is private, and the same after a restart on the same store.
    path = key_path(proxy.settings.store.path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), access=ACCESS
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(again.url + "/attestations/key", headers=AUTH) as r:
            assert r.headers["X-Airlock-Keyid"] == served_keyid
    assert (await airlock_verify(again.url, str(files[0]))).returncode == 0


async def test_monitor_mode_serves_but_does_not_approve(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    (policies_dir / "data" / "pypi.json").write_text(
        json.dumps({"deny_versions": {"tiny-lib": {"1.1": "not yet reviewed"}}})
    )
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url),
        policy=PolicySettings(path=policies_dir, mode="monitor", reload_interval=0),
    )
    name = "tiny_lib-1.1-py3-none-any.whl"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy.url}/pypi/files/tiny-lib/{name}") as r:
            assert r.status == 200  # monitor mode: logged, not blocked
            (tmp_path / name).write_bytes(await r.read())
    await proxy.app[SERVED_LOG].drain()
    got = await airlock_verify(proxy.url, str(tmp_path / name), token=None)
    assert got.returncode == 1
    assert "decision was 'monitor-deny', not an approval" in got.stdout
    [row] = await proxy.app[SERVED_LOG]._records.served()
    assert row.rules == ("deny-list",)


async def test_hf_cache_verifies(tmp_path: Path) -> None:
    risky = build_repo(
        "model", RISKY, [{".gitattributes": GITATTRIBUTES, "pytorch_model.bin": EVIL}],
        created_at=CREATED,
    )  # fmt: skip
    async with start_fake_hub(repos=[*bom_repos(), risky], large_file_size=16) as hub:
        async with hf_proxy(tmp_path, hub.url, access=ACCESS) as proxy:
            commit = hub.commit_sha(MODEL)
            home = tmp_path / "hf"
            env = hf_env(proxy.endpoint, home, token=TOKEN)
            snippet = f"result = hf.snapshot_download({MODEL!r}, revision={commit!r})"
            root = Path((await run_hf(snippet, env)).ok())
            # A quarantined file (its transfer is cut) is neither logged nor approved.
            risky_commit = hub.commit_sha(RISKY)
            evil = f"result = download({RISKY!r}, 'pytorch_model.bin', revision={risky_commit!r})"
            assert (await run_hf(evil, env)).error is not None
            await proxy.app[SERVED_LOG].drain()
            served = await proxy.app[SERVED_LOG]._records.served()
            assert {r.filename for r in served} == {
                ".gitattributes",
                "config.json",
                "model.safetensors",
            }
            evil_digest = hashlib.sha256(EVIL).hexdigest()
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{proxy.url}/attestations/{evil_digest}", headers=AUTH) as r:
                    assert r.status == 404

            ok = await airlock_verify(proxy.url, "--hf-cache", str(home / "hub"))
            assert ok.returncode == 0, ok.output
            assert ok.stdout.count("OK   models--acme--bom-model@") == 3
            assert "acme/bom-model" in ok.stdout

            config = (root / "config.json").resolve()  # the blob the snapshot links to
            config.write_bytes(b'{"model_type": "evil"}\n')
            bad = await airlock_verify(proxy.url, "--hf-cache", str(home))
            assert bad.returncode == 1
            assert bad.stdout.count("OK   ") == 2
            assert f"FAIL models--acme--bom-model@{commit[:12]}/config.json: no approval" in (
                bad.stdout
            )
