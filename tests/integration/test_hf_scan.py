"""Model scanning end to end: a malicious pickle is quarantined (the reason reaches the real
hub client), a benign safetensors file is served, an admin approval lets a digest through."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.clients import run
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo, safetensors_bytes

RISKY = "acme/risky-model"
COMMIT_READY = "__commit__"
# A protocol-0 pickle that calls os.system on load (never loaded here, only scanned).
EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        running.add_repo(
            build_repo(
                "model",
                RISKY,
                [
                    {
                        ".gitattributes": GITATTRIBUTES,
                        "pytorch_model.bin": EVIL,
                        "model.safetensors": safetensors_bytes({"w": ([2], [1.0, 2.0])}),
                        "config.json": b'{"model_type": "tiny"}\n',
                    }
                ],
                created_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url) as running:
        yield running


def _fetch(repo: str, path: str, commit: str) -> str:
    return f"result = open(download({repo!r}, {path!r}, revision={commit!r}), 'rb').read().hex()"


async def test_malicious_pickle_is_quarantined_benign_file_served(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    commit = hub.commit_sha(RISKY, "main")
    env = hf_env(proxy.endpoint, tmp_path / "home")
    good = await run_hf(_fetch(RISKY, "model.safetensors", commit), env)
    assert bytes.fromhex(good.ok()) == hub.expect(RISKY, "model.safetensors", "main").content()

    bad = await run_hf(_fetch(RISKY, "pytorch_model.bin", commit), env)
    assert bad.error is not None
    assert "os.system" in bad.error.message, bad.error.message
    assert "quarantined" in bad.error.message
    # Stored once (never fetched twice), refused every time.
    again = await run_hf(_fetch(RISKY, "pytorch_model.bin", commit), env)
    assert again.error is not None
    assert "os.system" in again.error.message
    assert hub.requests.body_fetches("pytorch_model.bin", RISKY) == 1

    # An admin approves the digest with a reason (CLI); the download then succeeds.
    digest = hashlib.sha256(EVIL).hexdigest()
    approved = await run(
        sys.executable,
        "-m",
        "proxy",
        "quarantine",
        "approve",
        digest,
        "--reason",
        "vetted: test fixture",
        env=_env(proxy),
    )
    assert approved.returncode == 0, approved.output
    listed = await run(sys.executable, "-m", "proxy", "quarantine", "list", env=_env(proxy))
    assert digest in listed.stdout
    assert "approve" in listed.stdout
    ok = await run_hf(_fetch(RISKY, "pytorch_model.bin", commit), env)
    assert bytes.fromhex(ok.ok()) == EVIL


def _env(proxy: HfProxy) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    env["AIRLOCK_STORE__PATH"] = str(proxy.settings.store.path)
    env["AIRLOCK_POLICY__PATH"] = str(proxy.policies)
    return env


async def test_approving_in_the_admin_page_lets_the_download_through(
    hub: FakeHub, tmp_path: Path
) -> None:
    """Quarantined on download; an admin approves it in a real browser; the download works."""
    from playwright.async_api import async_playwright, expect

    from tests.fakes.admin_testing import ADMIN_TOKEN, access_for_tests
    from tests.integration.test_admin_browser import CHROMIUM_ARGS
    from tests.require import require_chromium

    chromium = require_chromium()
    commit = hub.commit_sha(RISKY, "main")
    async with hf_proxy(tmp_path, hub.url, access=access_for_tests()) as proxy:
        env = hf_env(proxy.endpoint, tmp_path / "home")
        bad = await run_hf(_fetch(RISKY, "pytorch_model.bin", commit), env)
        assert bad.error is not None
        assert "os.system" in bad.error.message
        digest = hashlib.sha256(EVIL).hexdigest()
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = await context.new_page()
                await page.goto(proxy.url + "/admin/login")
                await page.fill('input[name="token"]', ADMIN_TOKEN)
                await page.click('button[type="submit"]')
                row = page.locator(f"#q-{digest}")
                await expect(row).to_contain_text("os.system")
                await row.locator('input[name="reason"]').fill("vetted fixture")
                await row.locator('button[value="approve"]').click()
                await expect(row.locator(".status")).to_have_text("approved")
            finally:
                await context.close()
        ok = await run_hf(_fetch(RISKY, "pytorch_model.bin", commit), env)
        assert bytes.fromhex(ok.ok()) == EVIL
