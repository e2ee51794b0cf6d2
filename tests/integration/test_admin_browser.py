"""The admin page in a real headless browser (Debian's chromium driven by playwright):
log in, find the quarantined digest, approve it with a reason, see it recorded."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright, expect

from proxy.appkeys import RECORDS
from proxy.trust.records import Verdict
from tests.fakes.admin_testing import ADMIN_TOKEN, running_app, settings_for_tests
from tests.require import require_chromium

DIGEST = "5e" * 32
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def test_admin_page__approve_in_a_real_browser(tmp_path: Path, policies_dir: Path) -> None:
    chromium = require_chromium()
    async with running_app(settings_for_tests(tmp_path / "store", policies_dir)) as proxy:
        finding = {"rule": "pickle-global", "message": "posix.system in data.pkl", "location": ""}
        await proxy.app[RECORDS].record_verdict(
            Verdict(DIGEST, "scan-1", "pickle", (finding,), time.time())
        )
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),  # fresh user-data dir
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = await context.new_page()
                await page.goto(proxy.url + "/admin/")
                await expect(page).to_have_url(proxy.url + "/admin/login")
                await page.fill('input[name="token"]', ADMIN_TOKEN)
                await page.click('button[type="submit"]')
                await expect(page).to_have_url(proxy.url + "/admin/")

                row = page.locator(f"#q-{DIGEST}")
                await expect(row).to_contain_text("posix.system in data.pkl")
                await expect(row.locator(".status")).to_have_text("pending review")
                await row.locator('input[name="reason"]').fill("reviewed in the browser test")
                await row.locator('button[value="approve"]').click()

                await expect(page).to_have_url(proxy.url + "/admin/#quarantine")
                await expect(page.locator(".flash")).to_contain_text("Approved")
                await expect(row.locator(".status")).to_have_text("approved")
                await expect(row).to_contain_text("by root-admin")
                await expect(row).to_contain_text("reviewed in the browser test")
                shot = tmp_path / "admin.png"
                await page.screenshot(path=str(shot), full_page=True)
            finally:
                await context.close()

        async with aiohttp.ClientSession() as s:
            async with s.get(
                proxy.url + "/admin/api/quarantine",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as r:
                [item] = (await r.json())["quarantine"]
    assert item["approval"]["verdict"] == "approve"
    assert item["approval"]["reason"] == "reviewed in the browser test"
    assert item["approval"]["by"] == "root-admin"
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000
