"""The proxy under test, in-process, pointed at a stand-in hub (for tests/integration/test_hf_*).

async with hf_proxy(tmp_path, hub) as proxy:
    proxy.endpoint            # HF_ENDPOINT for clients: http://127.0.0.1:<port>/hf
    await proxy.set_hf_data({...})   # replace policies/data/hf.json and reload the policy
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.app import create_app
from proxy.appkeys import POLICY
from proxy.settings import (
    AccessSettings,
    EgressSettings,
    HfSettings,
    PolicySettings,
    Settings,
    StoreSettings,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HF_DATA: dict[str, Any] = json.loads((REPO / "policies/data/hf.json").read_text())


@dataclass
class HfProxy:
    url: str
    app: web.Application
    settings: Settings
    policies: Path

    @property
    def endpoint(self) -> str:
        return f"{self.url}/hf"

    async def set_hf_data(self, changes: dict[str, Any]) -> None:
        """Default hf.json with *changes* applied, then reload (raises if it did not load)."""
        data = {**DEFAULT_HF_DATA, **changes}
        (self.policies / "data" / "hf.json").write_text(json.dumps(data))
        status = await self.app[POLICY].reload()
        assert status.last_reload_ok, status.last_error


def copy_policies(dest: Path) -> Path:
    if not dest.exists():
        shutil.copytree(REPO / "policies", dest)
    return dest


@asynccontextmanager
async def hf_proxy(
    tmp_path: Path,
    upstream: str,
    *,
    hf_data: dict[str, Any] | None = None,
    policy: PolicySettings | None = None,
    store: Path | None = None,
    access: AccessSettings | None = None,
    egress_allow: tuple[str, ...] = (),
    **hf: Any,
) -> AsyncIterator[HfProxy]:
    """The proxy in front of *upstream*; *egress_allow* lists other origins it may fetch from
    although they are internal (the stand-in hub's CDN on another loopback port: an admin
    lists such a host in ``[egress] allow``)."""
    policies = copy_policies(tmp_path / "policies")
    if hf_data is not None:
        (policies / "data" / "hf.json").write_text(json.dumps({**DEFAULT_HF_DATA, **hf_data}))
    settings = Settings(
        store=StoreSettings(path=store or tmp_path / "store"),
        hf=replace(HfSettings(upstream=upstream), **hf),
        policy=policy or PolicySettings(path=policies, reload_interval=0),
        access=access or AccessSettings(),
        egress=EgressSettings(allow=egress_allow),
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield HfProxy(f"http://127.0.0.1:{port}", app, settings, policies)
    finally:
        await runner.cleanup()
