"""``airlock check hf``: the Hub decision with reasons and facts, through the server's wiring."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.clients import run
from tests.fakes.hf_fixtures import MODEL
from tests.fakes.hf_hub import FakeHub, start_fake_hub

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        yield running


async def test_check_hf_explains_unpinned_and_allows_a_pinned_file(
    hub: FakeHub, tmp_path: Path
) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRLOCK_", "HF_"))}
    env |= {
        "AIRLOCK_HF__UPSTREAM": hub.url,
        "AIRLOCK_STORE__PATH": str(tmp_path / "store"),
        "AIRLOCK_POLICY__PATH": str(tmp_path / "policies"),
    }
    cli = (sys.executable, "-m", "proxy", "check", "hf")
    branch = await run(*cli, f"{MODEL}@main", "--file", "config.json", env=env)
    assert branch.returncode == 1, branch.output
    assert f"hf {MODEL}@main config.json: DENIED" in branch.stdout
    assert "[unpinned]" in branch.stdout
    assert hub.commit_sha(MODEL, "main") in branch.stdout  # the commit to pin to
    assert '"pinned": false' in branch.stdout

    sha = hub.commit_sha(MODEL, "main")
    pinned = await run(*cli, f"{MODEL}@{sha}", "--file", "config.json", "--json", env=env)
    assert pinned.returncode == 0, pinned.output
    doc = json.loads(pinned.stdout)
    assert doc["allowed"] is True
    assert doc["decisions"][-1]["facts"]["commit"] == sha
