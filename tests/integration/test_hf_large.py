"""A 200 MB file through the proxy running as its own process: memory stays flat while it
streams (peak RSS from /proc), and the cold / warm / direct timings are reported."""

from __future__ import annotations

import json
from pathlib import Path

from tests.airlock_process import airlock_serve
from tests.fakes.hf_client import hf_env, run_hf
from tests.fakes.hf_fixtures import BIG_FILE, BIG_MODEL
from tests.fakes.hf_hub import start_fake_hub

MIB = 1024 * 1024
MAX_GROWTH = 64 * MIB  # the file is > 200 MB: buffering it would show


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


SNIPPET = """
    import hashlib, time
    started = time.perf_counter()
    path = download({repo!r}, {name!r}, revision={rev!r})
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    result = [seconds, digest.hexdigest(), os.path.getsize(path)]
"""


async def test_large_file_streams_with_flat_memory(tmp_path: Path) -> None:
    async with start_fake_hub() as hub:
        hub.mode.lfs_redirect = True
        expected = hub.expect(BIG_MODEL, BIG_FILE)
        assert expected.size >= 200 * 1000 * 1000
        snippet = SNIPPET.format(repo=BIG_MODEL, name=BIG_FILE, rev=expected.commit)
        extra = {
            "AIRLOCK_HF__OFFLINE": "false",
            "AIRLOCK_HF__UPSTREAM": hub.url,
            "AIRLOCK_EGRESS__ALLOW": f'["{hub.cdn_url}"]',  # its CDN: another loopback origin
        }
        async with airlock_serve(tmp_path, **extra) as proxy:
            pid = proxy.proc.pid
            baseline = _status_kib(pid, "VmRSS") * 1024
            direct = (await run_hf(snippet, hf_env(hub.url, tmp_path / "direct"))).ok()
            cold = (await run_hf(snippet, hf_env(f"{proxy.url}/hf", tmp_path / "cold"))).ok()
            warm = (await run_hf(snippet, hf_env(f"{proxy.url}/hf", tmp_path / "warm"))).ok()
            peak = _status_kib(pid, "VmHWM") * 1024
    for run in (direct, cold, warm):
        assert run[1:] == [expected.sha256, expected.size]
    assert hub.requests.body_fetches(BIG_FILE) == 2  # direct + the proxy's one fill
    figures = {
        "size_mb": round(expected.size / 1e6, 1),
        "direct_s": round(direct[0], 2),
        "proxy_cold_s": round(cold[0], 2),
        "proxy_warm_s": round(warm[0], 2),
        "proxy_rss_baseline_mib": round(baseline / MIB, 1),
        "proxy_rss_peak_mib": round(peak / MIB, 1),
    }
    print("hf large file:", json.dumps(figures))
    assert peak - baseline < MAX_GROWTH, figures
