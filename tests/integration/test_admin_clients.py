"""Clients made through the admin API: a token is issued once, identifies pip at once, survives a
restart, and stops working when the client is deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from proxy.settings import UpstreamSettings
from tests.clients import pip_install
from tests.fakes.admin_testing import ADMIN_TOKEN, CI_TOKEN, running_app, settings_for_tests
from tests.fakes.pypi_index import FakeIndex

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=body, headers=headers or ADMIN) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None


async def test_clients_made_through_the_api(
    fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    (policies_dir / "data" / "pypi.json").write_text(
        json.dumps({"groups": {"ci": {"deny_versions": {"tiny-lib": {"1.1": "not for CI"}}}}})
    )
    settings = settings_for_tests(
        tmp_path / "store", policies_dir, UpstreamSettings(name="fake", url=fake_index.simple_url)
    )
    async with running_app(settings) as proxy:
        api = proxy.url + "/admin/api/clients"
        status, made = await _call("POST", api, {"id": "runner-7", "groups": ["ci"]})
        assert status == 201, made
        token = made["token"]
        assert len(token) >= 32
        status, _ = await _call("POST", api, {"id": "runner-7"})
        assert status == 409
        status, _ = await _call("POST", api, {"id": "x y", "scopes": ["root"]})
        assert status == 400
        status, _ = await _call("POST", api, {"id": "z"}, {"Authorization": f"Bearer {CI_TOKEN}"})
        assert status == 403
        status, listed = await _call("GET", api)
        assert status == 200
        entry = next(c for c in listed["clients"] if c["id"] == "runner-7")
        assert entry["groups"] == ["ci"]
        assert entry["created_by"] == "root-admin"
        assert token not in json.dumps(listed)

        run = await pip_install(
            proxy.simple_as(token), "tiny-lib", target=tmp_path / "a", home=tmp_path
        )
        assert run.returncode == 0, run.output
        assert (tmp_path / "a" / "tiny_lib-1.0.dist-info").is_dir()  # the ci group's rule

    async with running_app(settings) as proxy:  # a restart keeps API-made clients
        async with aiohttp.ClientSession() as s:
            page = proxy.simple_as(token) + "tiny-lib/"
            async with s.get(page) as r:
                assert r.status == 200
        api = proxy.url + "/admin/api/clients"
        status, _ = await _call("DELETE", api + "/root-admin")
        assert status == 409  # defined in the config file
        status, _ = await _call("DELETE", api + "/runner-7")
        assert status == 204
        async with aiohttp.ClientSession() as s:
            async with s.get(proxy.simple_as(token) + "tiny-lib/") as r:
                assert r.status == 401
