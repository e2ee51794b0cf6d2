"""The proxy on each in-process engine: the real OPA (``"opa-embedded"``, what ``"auto"`` picks
where it is installed) and regopy (what ``"auto"`` falls back to)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest

from proxy.appkeys import ENGINE, POLICY
from proxy.settings import PolicySettings, UpstreamSettings
from tests.clients import pip_install
from tests.conftest import ProxyFactory
from tests.fakes.pypi_index import FakeIndex
from tests.require import require_golib


@pytest.mark.parametrize("engine", ["opa-embedded", "regopy"])
async def test_decisions_reasons_and_hot_reload_in_process(
    start_proxy: ProxyFactory,
    fake_index: FakeIndex,
    policies_dir: Path,
    tmp_path: Path,
    engine: Literal["opa-embedded", "regopy"],
) -> None:
    if engine == "opa-embedded":
        require_golib()
    data = policies_dir / "data" / "pypi.json"
    data.write_text(json.dumps({"deny_versions": {"tiny-lib": {"1.1": "CVE-2099-0002"}}}))
    proxy = await start_proxy(
        UpstreamSettings(name="fake", url=fake_index.simple_url),
        policy=PolicySettings(path=policies_dir, engine=engine, reload_interval=0),
    )
    assert proxy.app[ENGINE].name == engine
    ok = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert (tmp_path / "a" / "tiny_lib-1.0.dist-info").is_dir()
    pinned = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode != 0
    assert "CVE-2099-0002" in pinned.said

    first = proxy.app[ENGINE].revision
    data.write_text(json.dumps({}))
    status = await proxy.app[POLICY].reload()
    assert status.last_reload_ok, status.last_error
    assert proxy.app[ENGINE].revision != first
    (policies_dir / "pypi.rego").write_text("package airlock.pypi\n\nimport rego.v1\n\nx := {\n")
    status = await proxy.app[POLICY].reload()
    assert status.last_reload_ok is False
    assert proxy.app[ENGINE].revision == status.revision  # the previous policy keeps serving
    again = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "c", home=tmp_path)
    assert again.returncode == 0, again.output
