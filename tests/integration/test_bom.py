"""AI-BOM end to end: two clients download with real pip and the real huggingface_hub client
through one proxy; ``airlock bom`` and ``GET /admin/api/bom`` then list every file served, with
the right sha256, purl and clients, as CycloneDX 1.6 that passes the schema."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from proxy.app import create_app
from proxy.appkeys import SERVED_LOG
from proxy.settings import (
    AccessSettings,
    ClientSettings,
    HfSettings,
    PolicySettings,
    PypiSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
)
from tests.clients import client_env, run
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo, safetensors_bytes
from tests.fakes.pypi_index import FakeIndex

CI_TOKEN = "ci-token-0123456789abcdef"
DEV_TOKEN = "dev-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
MODEL = "acme/bom-model"
DATASET = "acme/bom-data"
CREATED = datetime(2024, 5, 1, tzinfo=UTC)


def access() -> AccessSettings:
    return AccessSettings(
        anonymous="deny",
        clients=(
            ClientSettings(id="ci-runner-1", token=CI_TOKEN, groups=("ci",)),
            ClientSettings(id="dev-laptop", token=DEV_TOKEN),
            ClientSettings(id="admin", token=ADMIN_TOKEN, scopes=("admin",)),
        ),
    )


def bom_repos() -> list[Any]:
    model = build_repo(
        "model",
        MODEL,
        [
            {
                ".gitattributes": GITATTRIBUTES,
                "config.json": b'{"model_type": "tiny"}\n',
                "model.safetensors": safetensors_bytes({"w": ([2], [1.0, 2.0])}),
            }
        ],
        created_at=CREATED,
    )
    data = build_repo(
        "dataset",
        DATASET,
        [{".gitattributes": GITATTRIBUTES, "data/train.jsonl": b'{"text": "hi"}\n'}],
        created_at=CREATED,
    )
    return [model, data]


@dataclass
class Airlock:
    url: str
    app: web.Application
    settings: Settings

    def index(self, user: str, token: str) -> str:
        return self.url.replace("http://", f"http://{user}:{token}@") + "/pypi/simple/"

    def env(self) -> dict[str, str]:
        """The environment of an ``airlock`` command run next to this proxy."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
        env["AIRLOCK_STORE__PATH"] = str(self.settings.store.path)
        env["AIRLOCK_POLICY__PATH"] = str(self.settings.policy.path)
        return env


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(repos=bom_repos(), large_file_size=16) as running:
        yield running


@pytest.fixture
async def airlock(
    fake_index: FakeIndex, hub: FakeHub, policies_dir: Path, tmp_path: Path
) -> AsyncIterator[Airlock]:
    """One proxy for both ecosystems, clients identified by token."""
    settings = Settings(
        store=StoreSettings(path=tmp_path / "store"),
        pypi=PypiSettings(upstreams=(UpstreamSettings(name="fake", url=fake_index.simple_url),)),
        hf=HfSettings(upstream=hub.url),
        policy=PolicySettings(path=policies_dir, reload_interval=0),
        access=access(),
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Airlock(f"http://127.0.0.1:{runner.addresses[0][1]}", app, settings)
    finally:
        await runner.cleanup()


async def pip_download(index: str, *reqs: str, dest: Path, home: Path) -> dict[str, str]:
    """Real ``pip download``: file name -> sha256 of what landed on disk."""
    got = await run(
        sys.executable, "-m", "pip", "download", "--no-cache-dir", "--index-url", index,
        "-d", str(dest), *reqs, env=client_env(home),
    )  # fmt: skip
    assert got.returncode == 0, got.output
    return await asyncio.to_thread(
        lambda: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dest.iterdir()}
    )


async def hf_snapshot(
    airlock: Airlock, repo: str, commit: str, token: str, home: Path, repo_type: str = "model"
) -> dict[str, str]:
    """Real ``snapshot_download`` at a commit: path -> sha256 of the files in the cache."""
    snippet = f"""
root = hf.snapshot_download({repo!r}, repo_type={repo_type!r}, revision={commit!r},
                            cache_dir=cache_dir)
result = {{}}
for dirpath, _, names in os.walk(root):
    for n in names:
        p = os.path.join(dirpath, n)
        result[os.path.relpath(p, root)] = read_hex(p)
"""
    done = await run_hf(snippet, hf_env(airlock.url + "/hf", home, token=token))
    return {path: hashlib.sha256(bytes.fromhex(h)).hexdigest() for path, h in done.ok().items()}


def validate(text: str) -> dict[str, Any]:
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc: dict[str, Any] = json.loads(text)
    return doc


def props(c: dict[str, Any], name: str) -> list[str]:
    return sorted(p["value"] for p in c.get("properties", []) if p["name"] == f"airlock:{name}")


def pypi_files(doc: dict[str, Any]) -> dict[str, tuple[str, str, list[str]]]:
    """file name -> (sha256, purl, clients) of the BOM's PyPI components."""
    out = {}
    for c in doc.get("components", []):
        if c["purl"].startswith("pkg:pypi/"):
            [name] = props(c, "file_name")
            out[name] = (c["hashes"][0]["content"], c["purl"], props(c, "client"))
    return out


def hf_files(doc: dict[str, Any], purl: str) -> dict[str, tuple[str, list[str]]]:
    [repo] = [c for c in doc.get("components", []) if c["purl"] == purl]
    return {f["name"]: (f["hashes"][0]["content"], props(f, "client")) for f in repo["components"]}


async def test_bom_lists_everything_each_client_pulled(
    airlock: Airlock, hub: FakeHub, tmp_path: Path
) -> None:
    ci_files = await pip_download(
        airlock.index("ci-runner-1", CI_TOKEN), "tiny-lib==1.0", "--no-deps",
        dest=tmp_path / "ci", home=tmp_path,
    )  # fmt: skip
    dev_files = await pip_download(
        airlock.index("dev", DEV_TOKEN), "tiny-app", dest=tmp_path / "dev", home=tmp_path
    )
    assert set(ci_files) == {"tiny_lib-1.0-py3-none-any.whl"}
    assert set(dev_files) == {"tiny_app-2.0-py3-none-any.whl", "tiny_lib-1.1-py3-none-any.whl"}
    model_commit = hub.commit_sha(MODEL)
    data_commit = hub.commit_sha(DATASET, repo_type="dataset")
    model_files = await hf_snapshot(airlock, MODEL, model_commit, CI_TOKEN, tmp_path / "hf-ci")
    data_files = await hf_snapshot(
        airlock, DATASET, data_commit, DEV_TOKEN, tmp_path / "hf-dev", "dataset"
    )
    assert set(model_files) == {".gitattributes", "config.json", "model.safetensors"}
    await airlock.app[SERVED_LOG].drain()

    # The CLI, next to the running proxy (same store).
    made = await run(sys.executable, "-m", "proxy", "bom", env=airlock.env())
    assert made.returncode == 0, made.output
    doc = validate(made.stdout)
    assert doc["metadata"]["tools"]["components"][0]["name"] == "airlock"
    expected_pypi = {
        name: (sha, f"pkg:pypi/{name.split('-')[0].replace('_', '-')}@{name.split('-')[1]}"
               f"?file_name={name}", [client])
        for files, client in ((ci_files, "ci-runner-1"), (dev_files, "dev-laptop"))
        for name, sha in files.items()
    }  # fmt: skip
    assert pypi_files(doc) == expected_pypi  # .metadata files are not artifacts
    model_purl = f"pkg:huggingface/acme/bom-model@{model_commit}"
    assert hf_files(doc, model_purl) == {p: (s, ["ci-runner-1"]) for p, s in model_files.items()}
    data_purl = (
        f"pkg:huggingface/acme/bom-data@{data_commit}"
        "?repository_url=https://huggingface.co/datasets"
    )
    assert hf_files(doc, data_purl) == {p: (s, ["dev-laptop"]) for p, s in data_files.items()}
    types = {c["purl"]: c["type"] for c in doc["components"]}
    assert (types[model_purl], types[data_purl]) == ("machine-learning-model", "data")
    model = next(c for c in doc["components"] if c["purl"] == model_purl)
    assert props(model, "scan_verdict") == ["clean"]
    assert props(model, "decision") == ["allow"]
    assert props(model, "upstream") == ["hf"]
    assert len(props(model, "policy_revision")[0]) >= 40  # the full revision, not a prefix
    lib = next(c for c in doc["components"] if c["name"] == "tiny-lib")
    assert props(lib, "upstream") == ["fake"]
    assert props(lib, "policy_revision") == props(model, "policy_revision")

    # --client filters; --since in the future leaves nothing; a bad time is a usage error.
    mine = await run(
        sys.executable, "-m", "proxy", "bom", "--client", "dev-laptop", env=airlock.env()
    )
    dev_doc = validate(mine.stdout)
    assert set(pypi_files(dev_doc)) == set(dev_files)
    assert [c["purl"] for c in dev_doc["components"] if c["purl"].startswith("pkg:hugging")] == [
        data_purl
    ]
    later = await run(
        sys.executable, "-m", "proxy", "bom", "--since", "2999-01-01", env=airlock.env()
    )
    assert "components" not in validate(later.stdout)
    bad = await run(sys.executable, "-m", "proxy", "bom", "--until", "soon", env=airlock.env())
    assert bad.returncode == 2
    assert "ISO 8601" in bad.stderr

    # The admin API gives the same inventory.
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(airlock.url + "/admin/api/bom", headers=admin) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/vnd.cyclonedx+json")
            api_doc = validate(await r.text())
        assert pypi_files(api_doc) == expected_pypi
        assert {c["purl"] for c in api_doc["components"]} == {c["purl"] for c in doc["components"]}
        query = {"client": "ci-runner-1", "until": "2999-01-01T00:00:00Z"}
        async with s.get(airlock.url + "/admin/api/bom", headers=admin, params=query) as r:
            ci_doc = validate(await r.text())
        assert set(pypi_files(ci_doc)) == set(ci_files)
        assert {c["purl"] for c in ci_doc["components"]} == {
            model_purl,
            expected_pypi["tiny_lib-1.0-py3-none-any.whl"][1],
        }
        async with s.get(airlock.url + "/admin/api/bom", params={"since": "x"}, headers=admin) as r:
            assert r.status == 400
            assert "ISO 8601" in (await r.json())["error"]
        async with s.get(airlock.url + "/admin/api/bom") as r:
            assert r.status == 401
        dev = {"Authorization": f"Bearer {DEV_TOKEN}"}
        async with s.get(airlock.url + "/admin/api/bom", headers=dev) as r:
            assert r.status == 403
