"""Shared fixtures: a clean environment, a fake upstream index and the proxy under test.

Everything runs on 127.0.0.1 with port 0; nothing here needs the internet.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxy.app import create_app
from proxy.clock import SYSTEM_CLOCK
from proxy.settings import (
    AccessSettings,
    PolicySettings,
    PypiSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
)
from tests.fakes.devpi import Devpi, running_devpi
from tests.fakes.dists import sdist, wheel
from tests.fakes.pypi_index import FakeIndex

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AIRLOCK_/PIP_/UV_/HF_ variable or proxy setting from the machine leaks into a test."""
    for key in list(os.environ):
        if key.startswith(("AIRLOCK_", "PIP_", "UV_", "HF_")) or key.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
async def fake_index() -> AsyncIterator[FakeIndex]:
    index = FakeIndex()
    index.add(wheel("tiny-lib", "1.0"), sdist("tiny-lib", "1.0"))
    index.add(wheel("tiny-lib", "1.1"), sdist("tiny-lib", "1.1"))
    index.add(wheel("tiny-app", "2.0", requires=("tiny-lib>=1.0",)))
    index.add(wheel("tiny-dep", "0.5"), serve_metadata=False)
    async with index.running():
        yield index


@pytest.fixture(scope="session")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devpi]:
    """A real devpi-server: the internal index, hosting acme-utils 1.0 (session-wide)."""
    with running_devpi(tmp_path_factory.mktemp("devpi")) as server:
        server.upload(wheel("acme-utils", "1.0"))
        yield server


@dataclass
class Proxy:
    url: str
    app: web.Application
    settings: Settings
    policies: Path

    @property
    def simple(self) -> str:
        return f"{self.url}/pypi/simple/"

    def set_policy_data(self, name: str, data: dict[str, Any]) -> None:
        import json

        (self.policies / "data" / f"{name}.json").write_text(json.dumps(data))


ProxyFactory = Callable[..., Awaitable[Proxy]]


class ManualClock:
    """A clock a test advances: starts at the machine's time, moves only when told."""

    def __init__(self) -> None:
        self._ns = time.time_ns()
        self._mono = 1000.0

    def now_ns(self) -> int:
        return self._ns

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._ns += int(seconds * 1e9)
        self._mono += seconds


@pytest.fixture
def policies_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(REPO / "policies", dest)
    return dest


@pytest.fixture
async def start_proxy(tmp_path: Path, policies_dir: Path) -> AsyncIterator[ProxyFactory]:
    runners: list[web.AppRunner] = []

    async def start(*upstreams: UpstreamSettings, **pypi: Any) -> Proxy:
        policy = pypi.pop("policy", None) or PolicySettings(path=policies_dir, reload_interval=0)
        access = pypi.pop("access", None) or AccessSettings()
        clock = pypi.pop("clock", None) or SYSTEM_CLOCK
        settings = Settings(
            store=StoreSettings(path=tmp_path / "store"),
            pypi=replace(PypiSettings(), upstreams=tuple(upstreams), **pypi),
            policy=policy,
            access=access,
        )
        app = create_app(settings, clock)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return Proxy(f"http://127.0.0.1:{port}", app, settings, policy.path)

    yield start
    for r in runners:
        await r.cleanup()


@pytest.fixture
async def proxy(start_proxy: ProxyFactory, fake_index: FakeIndex) -> Proxy:
    return await start_proxy(UpstreamSettings(name="fake", url=fake_index.simple_url))
