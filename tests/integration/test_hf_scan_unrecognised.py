"""Issue #11.4 end to end: through the real hub client and the proxy, a malicious pickle in
joblib's legacy zlib "Z-file" layout is refused with the pickle scanner's reason, an unparseable
``.bin`` is refused as unrecognised content, and a clean compressed pickle is served (as is the
same unparseable content under a name no loader deserialises)."""

from __future__ import annotations

import collections
import pickle
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import FakeHub, start_fake_hub
from tests.fakes.hf_proxy import HfProxy, hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo

REPO = "acme/legacy-sklearn"
# os.system("echo pwned"), hand-assembled (protocol 2); only ever scanned, never loaded.
EVIL = b"\x80\x02cos\nsystem\n(X\x0a\x00\x00\x00echo pwnedtR."
BENIGN = pickle.dumps(collections.OrderedDict(w=[1.0, 2.0], name="tiny"), protocol=2)
NOISE = bytes((i * 131 + 7) % 251 for i in range(6000))  # not any format, > LFS threshold


def zfile(payload: bytes) -> bytes:
    """joblib < 0.10 ``write_zfile``: ``ZF``, hex length padded to 19 bytes, zlib data."""
    return b"ZF" + f"{len(payload):#x}".ljust(19).encode() + zlib.compress(payload, 3)


FILES = {
    ".gitattributes": GITATTRIBUTES,
    "model.joblib": zfile(EVIL),
    "pytorch_model.bin": NOISE,
    "scaler.pkl.z": zlib.compress(BENIGN, 3),
    "data/blob.dat": NOISE,
}


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with start_fake_hub(large_file_size=4096) as running:
        running.add_repo(
            build_repo("model", REPO, [FILES], created_at=datetime(2024, 5, 1, tzinfo=UTC))
        )
        yield running


@pytest.fixture
async def proxy(hub: FakeHub, tmp_path: Path) -> AsyncIterator[HfProxy]:
    async with hf_proxy(tmp_path, hub.url) as running:
        yield running


def _fetch(path: str, commit: str) -> str:
    return f"result = open(download({REPO!r}, {path!r}, revision={commit!r}), 'rb').read().hex()"


async def test_legacy_joblib_and_unrecognised_bin_refused_clean_pickle_served(
    hub: FakeHub, proxy: HfProxy, tmp_path: Path
) -> None:
    commit = hub.commit_sha(REPO, "main")
    env = hf_env(proxy.endpoint, tmp_path / "home")

    for _ in range(2):  # the first fetch is cut, the retry gets the policy's 403
        legacy = await run_hf(_fetch("model.joblib", commit), env)
        assert legacy.error is not None
        assert "quarantined" in legacy.error.message, legacy.error.message
        assert "pickle imports os.system" in legacy.error.message

        garbage = await run_hf(_fetch("pytorch_model.bin", commit), env)
        assert garbage.error is not None
        assert "unrecognised content in a model file" in garbage.error.message
    assert hub.requests.body_fetches("model.joblib", REPO) == 1

    clean = await run_hf(_fetch("scaler.pkl.z", commit), env)
    assert bytes.fromhex(clean.ok()) == FILES["scaler.pkl.z"]
    # The same bytes as the refused .bin, under a name no model loader opens: served.
    other = await run_hf(_fetch("data/blob.dat", commit), env)
    assert bytes.fromhex(other.ok()) == NOISE
