"""Decompression bombs in model files served by the hub (issue #11): a ``.pkl.gz`` (gzip) and a
``model.joblib`` (joblib's zlib "Z-file") of ~2 MB that unpack to 2 GiB of a harmless pickle.

Unpacked in full each would be a clean pickle, so only the scanner's expansion bound stands
between them and the client: it must stop there and refuse with that reason (``container-bomb``,
"member expands ...x"), the client gets an error on both runs, and the proxy's memory stays
bounded (its peak resident size, reset before the downloads, stays far below the expansion).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_hub import start_fake_hub
from tests.fakes.hf_proxy import hf_proxy
from tests.fakes.hf_repos import GITATTRIBUTES, build_repo
from tests.fakes.hostile import deflate_bomb, pickled_nuls
from tests.fakes.hostile_hub import store_problems

REPO = "hostile/bomb"
EXPANDED = 2 << 30  # 2 GiB
MIB = 1 << 20


def _zfile(expanded: int) -> bytes:
    """joblib < 0.10 ``write_zfile``: ``ZF``, the length in hex padded to 19 bytes, zlib data."""
    head, tail = pickled_nuls(expanded)
    length = len(head) + (expanded - len(head) - len(tail)) // MIB * MIB + len(tail)
    body = deflate_bomb(head, expanded, tail, container="zlib")
    return b"ZF" + f"{length:#x}".ljust(19).encode() + body


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)


def _vm(field: str) -> int:
    """A size from /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/self/status")


SNIPPET = """
out = {}
for name in NAMES:
    try:
        path = download(REPO, name, revision=COMMIT)
        out[name] = ["ok", os.path.getsize(path)]
    except Exception as e:
        out[name] = ["error", type(e).__name__, str(e)[:600]]
result = out
"""


async def test_decompression_bombs_stop_at_the_scanner_bound(tmp_path: Path) -> None:
    head, tail = pickled_nuls(EXPANDED)
    files = {
        ".gitattributes": GITATTRIBUTES,
        "model.pkl.gz": deflate_bomb(head, EXPANDED, tail),
        "model.joblib": _zfile(EXPANDED),
    }
    assert all(len(body) < 4 * MIB for body in files.values())  # ~1000:1
    repo = build_repo("model", REPO, [files], created_at=datetime(2024, 5, 1, tzinfo=UTC))
    commit = repo.head.oid
    names = ["model.pkl.gz", "model.joblib"]
    snippet = f"REPO, COMMIT, NAMES = {REPO!r}, {commit!r}, {names!r}\n" + SNIPPET
    async with start_fake_hub(repos=[repo]) as hub:
        with capture_logs() as logs:
            async with hf_proxy(tmp_path, hub.url) as proxy:
                env = hf_env(proxy.endpoint, tmp_path / "client")
                before = _vm("VmRSS")
                _reset_peak()
                runs = [await run_hf(snippet, env) for _ in range(2)]  # cut, then the 403
                peak = _vm("VmHWM")
    for run in runs:
        for name, got in run.ok().items():
            assert got[0] == "error", (name, got)
            assert "expands" in got[2], (name, got)
            assert "limit 200x" in got[2], (name, got)
    bombs = [
        e for e in logs if e.get("event") == "scanned" and "container-bomb" in e.get("findings", [])
    ]
    assert len(bombs) == 2, [e for e in logs if e.get("event") == "scanned"]
    denied = [
        e
        for e in logs
        if e.get("event") == "decision" and e.get("outcome") == "deny" and "expands" in str(e)
    ]
    assert {str(e.get("target", "")).rsplit("/", 1)[-1] for e in denied} >= set(names), denied
    assert peak - before < 512 * MIB, f"peak RSS grew by {(peak - before) // MIB} MiB"
    # the bombs themselves are stored (verified upstream bytes, quarantined by the verdict)
    allowed = {hashlib.sha256(body).hexdigest() for body in files.values()}
    assert await store_problems(tmp_path / "store", allowed) == []
