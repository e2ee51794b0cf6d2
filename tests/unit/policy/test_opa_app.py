"""OPA server mode end to end: settings, the engine factory, and the proxy deciding via OPA."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from proxy.appkeys import ENGINE, POLICY
from proxy.policy.factory import create_engine
from proxy.policy.snapshot import PolicyError
from proxy.settings import PolicySettings, SettingsError, UpstreamSettings, load_settings
from tests.conftest import ProxyFactory
from tests.fakes.opa_server import OpaProcess, opa_process
from tests.fakes.pypi_index import FakeIndex
from tests.ports import refusing_port
from tests.require import require_golib

REASON = "CVE-2099-0001 remote code execution"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def opa_server() -> Iterator[OpaProcess]:
    require_golib()
    with opa_process() as server:
        yield server


@pytest.fixture
def opa(opa_server: OpaProcess) -> OpaProcess:
    opa_server.reset()
    return opa_server


def test_the_opa_engine_needs_a_url() -> None:
    with pytest.raises(SettingsError, match=r"policy\.opa_url"):
        load_settings(None, env={"AIRLOCK_POLICY__ENGINE": "opa"})
    with pytest.raises(SettingsError, match=r"policy\.engine: must be one of"):
        load_settings(None, env={"AIRLOCK_POLICY__ENGINE": "wasm"})
    s = load_settings(
        None,
        env={"AIRLOCK_POLICY__ENGINE": "opa", "AIRLOCK_POLICY__OPA_URL": "http://127.0.0.1:8181"},
    )
    assert (s.policy.engine, s.policy.opa_url) == ("opa", "http://127.0.0.1:8181")


async def test_the_factory_builds_the_engine_the_settings_name(
    policies_dir: Path, opa: OpaProcess
) -> None:
    snapshot, auto = await create_engine(PolicySettings(path=policies_dir))
    await auto.close()  # "auto": OPA in-process, installed by make test
    assert (auto.name, auto.revision) == ("opa-embedded", snapshot.revision)
    snapshot, regopy = await create_engine(PolicySettings(path=policies_dir, engine="regopy"))
    await regopy.close()
    assert (regopy.name, regopy.revision) == ("regopy", snapshot.revision)
    settings = PolicySettings(path=policies_dir, engine="opa", opa_url=opa.url)
    snapshot, remote = await create_engine(settings)
    await remote.close()
    assert (remote.name, remote.revision) == ("opa-http", snapshot.revision)
    assert set(opa.policies()) == {f"airlock/{m}" for m in snapshot.modules}


async def test_no_opa_no_start(policies_dir: Path) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}"
        settings = PolicySettings(path=policies_dir, engine="opa", opa_url=url)
        with pytest.raises(PolicyError, match=r"is not ready after 0\.3s"):
            await create_engine(settings, opa_wait=0.3)


async def test_the_proxy_decides_through_opa(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, opa: OpaProcess
) -> None:
    data = policies_dir / "data" / "pypi.json"
    data.write_text(json.dumps({"deny_versions": {"tiny-lib": {"1.1": REASON}}}))
    policy = PolicySettings(path=policies_dir, engine="opa", opa_url=opa.url, reload_interval=0)
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url), policy=policy
    )
    assert proxy.app[ENGINE].name == "opa-http"
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.simple + "tiny-lib/", headers=JSON) as r:
            files = {f["filename"]: f for f in (await r.json(content_type=None))["files"]}
        assert REASON in files["tiny_lib-1.1-py3-none-any.whl"]["yanked"]
        assert files["tiny_lib-1.0-py3-none-any.whl"].get("yanked", False) is False
        async with s.get(proxy.url + "/pypi/files/tiny-lib/tiny_lib-1.1-py3-none-any.whl") as r:
            assert r.status == 403
        asked = opa.stats()["requests"]["POST /v1/data/airlock/pypi/decision"]

        data.write_text(json.dumps({"deny_versions": {"tiny-lib": {"1.0": REASON, "1.1": REASON}}}))
        status = await proxy.app[POLICY].reload()
        assert status.last_reload_ok, status.last_error
        assert status.revision == proxy.app[ENGINE].revision
        async with s.get(proxy.simple + "tiny-lib/", headers=JSON) as r:
            files = {f["filename"]: f for f in (await r.json(content_type=None))["files"]}
        assert REASON in files["tiny_lib-1.0-py3-none-any.whl"]["yanked"]
    assert opa.stats()["requests"]["POST /v1/data/airlock/pypi/decision"] > asked
