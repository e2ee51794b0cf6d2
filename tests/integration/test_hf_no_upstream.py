"""Issue #13, fault 4: the hub upstream works out of the box, and a missing or unreachable one is
a 502/503 an admin can act on (X-Error-Code, X-Error-Message), never a hub "not found"."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
import structlog
from aiohttp import ClientSession

import proxy.hf.setup
from tests.fakes.hf_proxy import HfProxy, hf_proxy
from tests.ports import refusing_port

REPO = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NOT_FOUND_CODES = {"RepoNotFound", "RevisionNotFound", "EntryNotFound"}


def test_huggingface_hub_is_a_runtime_dependency() -> None:
    """A fresh `make serve` installs it (pip install -e .): its endpoint is the default."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]
    ]
    assert "huggingface_hub" in names


async def test_default_settings_use_the_clients_default_endpoint(tmp_path: Path) -> None:
    from huggingface_hub import constants

    with structlog.testing.capture_logs() as logs:
        async with hf_proxy(tmp_path, ""):
            pass
    started = [e for e in logs if e["event"] == "hf_started"]
    assert started == [
        {
            "event": "hf_started",
            "log_level": "info",
            "upstream": constants._HF_DEFAULT_ENDPOINT.rstrip("/"),
            "offline": False,
        }
    ]


async def _get(proxy: HfProxy, path: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    async with ClientSession() as s:
        async with s.request(method, proxy.endpoint + path, allow_redirects=False) as r:
            await r.read()
            return r.status, dict(r.headers)


PATHS = (
    f"/api/models/acme/tiny-model/revision/{COMMIT}",
    f"/acme/tiny-model/resolve/{COMMIT}/config.json",
    f"/api/models/acme/tiny-model/tree/{COMMIT}",
)


async def test_no_upstream_is_503_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when huggingface_hub is missing: nothing to read the default endpoint from."""
    monkeypatch.setattr(proxy.hf.setup, "default_hf_upstream", lambda: "")
    async with hf_proxy(tmp_path, "") as running:
        for path in PATHS:
            for method in ("GET", "HEAD") if "/resolve/" in path else ("GET",):
                status, headers = await _get(running, path, method)
                assert status == 503, (path, method, status)
                assert headers.get("X-Error-Code") == "UpstreamNotConfigured"
                message = headers.get("X-Error-Message", "")
                assert "no upstream hub is configured" in message
                assert "hf.upstream" in message


async def test_unreachable_upstream_is_502_not_not_found(tmp_path: Path) -> None:
    with refusing_port() as port:
        async with hf_proxy(tmp_path, f"http://127.0.0.1:{port}") as running:
            for path in PATHS:
                status, headers = await _get(running, path)
                assert status == 502, (path, status)
                assert headers.get("X-Error-Code") == "UpstreamUnavailable"
                assert headers.get("X-Error-Code") not in NOT_FOUND_CODES
                message = headers.get("X-Error-Message", "")
                assert "unreachable" in message
                assert "connection refused" in message


async def test_the_hub_client_prints_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """huggingface_hub raises its generic HTTP error with the message, not RepoNotFound."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    monkeypatch.setattr(proxy.hf.setup, "default_hf_upstream", lambda: "")
    async with hf_proxy(tmp_path, "") as running:
        api = HfApi(endpoint=running.endpoint, token=False)
        with pytest.raises(HfHubHTTPError) as raised:
            await asyncio.to_thread(api.model_info, "acme/tiny-model", revision=COMMIT)
    assert not isinstance(raised.value, RepositoryNotFoundError)
    assert "no upstream hub is configured" in str(raised.value)
