"""Test helpers for the admin API and page: settings with known clients, a server on port 0.

Shipped like ``proxy.policy.testing``: small, dependency-free and useful to anyone embedding the
app in their own tests.  Tokens here are test values, never defaults of the proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from proxy.app import create_app
from proxy.settings import (
    AccessSettings,
    ClientSettings,
    PolicySettings,
    PypiSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
)

ADMIN_TOKEN = "test-admin-token-0123456789"
CI_TOKEN = "test-ci-token-0123456789"


def access_for_tests() -> AccessSettings:
    return AccessSettings(
        clients=(
            ClientSettings(id="root-admin", token=ADMIN_TOKEN, scopes=("admin",)),
            ClientSettings(id="ci-runner", token=CI_TOKEN, groups=("ci",)),
        )
    )


def settings_for_tests(store: Path, policies: Path, *upstreams: UpstreamSettings) -> Settings:
    return Settings(
        store=StoreSettings(path=store),
        pypi=PypiSettings(upstreams=upstreams),
        policy=PolicySettings(path=policies, reload_interval=0),
        access=access_for_tests(),
    )


@dataclass(frozen=True)
class Running:
    url: str
    app: web.Application

    @property
    def simple(self) -> str:
        return f"{self.url}/pypi/simple/"

    def simple_as(self, token: str) -> str:
        """The index URL with *token* as basic-auth password (how pip and uv send it)."""
        return self.simple.replace("http://", f"http://token:{token}@", 1)


@asynccontextmanager
async def running_app(
    settings: Settings, prepare: Callable[[web.Application], None] | None = None
) -> AsyncIterator[Running]:
    """``create_app(settings)`` served on 127.0.0.1, port 0, until the block ends; *prepare*
    may replace collaborators first (e.g. the login throttle, with an injected clock)."""
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield Running(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()
