"""A hostile package index behind the proxy: wrong, swapped, resized, cut, stalled and gzip'd
distribution bodies, installed by real pip (with `--resume-retries`) and uv.

Each attack has its own project so every install shows one outcome.  Required: the install
fails, or what it installed is the right wheel's content; an honest second install succeeds;
nothing wrong is stored (blobs, tmp/, `store fsck`); a `verification` decision names each file
whose upstream bytes were refused.
"""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.settings import UpstreamSettings
from tests.clients import Run, pip_install, uv_install
from tests.conftest import ProxyFactory
from tests.fakes.dists import Dist, wheel
from tests.fakes.hostile import HostileUpstream, Tamper, evil_pickle
from tests.fakes.hostile_hub import store_problems
from tests.fakes.pypi_index import FakeIndex

SIZE = 200_000  # incompressible payload: the wheel is about this big
STALL_TIMEOUT = 3.0  # seconds without upstream bytes before the proxy gives the fetch up


def _rules(dists: dict[str, Dist]) -> list[Tamper]:
    def name(case: str) -> str:
        return "/files/" + dists[case].filename

    return [
        Tamper(name("swap"), swap=evil_pickle(len(dists["swap"].data))),
        Tamper(name("flip"), flip_at=1000),
        Tamper(name("wrong3"), flip_at=5000, times=3),
        Tamper(name("longer"), flip_at=7, extend=b"x" * 4096),
        Tamper(name("shorter"), truncate=1000),
        Tamper(name("cut"), cut_at=SIZE // 3),
        Tamper(name("stall"), stall_at=1000),
        Tamper(name("gzip"), gzip=True),
    ]


CASES = ["swap", "flip", "wrong3", "longer", "shorter", "cut", "stall", "gzip"]
# uv: the attacks whose bytes differ (cuts, short bodies and stalls are pip's part, for time)
UV_CASES = ["swap", "flip", "wrong3", "longer", "gzip"]
WRONG_CONTENT = {"swap", "flip", "wrong3", "longer"}


def _dists() -> dict[str, Dist]:
    rng = random.Random(20_251_126)
    return {c: wheel(f"hostile-{c}", "1.0", payload=rng.randbytes(SIZE)) for c in CASES}


def _installed_wrong(dist: Dist, target: Path) -> list[str]:
    """Files of the wheel whose installed bytes differ from the wheel's (empty: all right)."""
    with zipfile.ZipFile(io.BytesIO(dist.data)) as zf:
        members = [n for n in zf.namelist() if ".dist-info/" not in n]
        return [n for n in members if (target / n).read_bytes() != zf.read(n)]


async def _install(client: str, index_url: str, case: str, target: Path, home: Path) -> Run:
    req = f"hostile-{case}==1.0"
    if client == "pip":
        return await pip_install(
            index_url, req, target=target, home=home, extra=("--resume-retries", "3")
        )
    return await uv_install(index_url, req, target=target, home=home)


def _verification_events(logs: list[MutableMapping[str, Any]], filename: str) -> list[Any]:
    return [
        e
        for e in logs
        if e.get("event") == "decision"
        and "verification" in e.get("rules", [])
        and filename in str(e.get("target", "")) + str(e.get("reasons", ""))
    ]


@pytest.mark.parametrize("client", ["pip", "uv"])
async def test_hostile_index_bodies_end_in_an_error_or_the_right_files(
    client: str, start_proxy: ProxyFactory, tmp_path: Path
) -> None:
    dists = _dists()
    index = FakeIndex()
    index.add(*dists.values(), serve_metadata=False)
    async with index.running(), HostileUpstream(index.url).running() as bad:
        for rule in _rules(dists):
            bad.tamper(rule)
        upstream = UpstreamSettings(name="bad", url=f"{bad.url}/simple/", timeout=STALL_TIMEOUT)
        with capture_logs() as logs:
            proxy = await start_proxy(upstream)
            problems: list[str] = []
            failed_first: list[str] = []
            for case in CASES if client == "pip" else UV_CASES:
                for attempt in (1, 2):
                    target = tmp_path / f"{case}-{attempt}"
                    run = await _install(client, proxy.simple, case, target, tmp_path / "home")
                    if run.returncode != 0:
                        if attempt == 2 and case != "wrong3":
                            problems.append(f"{case}: honest second install failed: {run.output}")
                        failed_first.append(case)
                        continue
                    wrong = _installed_wrong(dists[case], target)
                    problems += [f"{case} (install {attempt}): wrong bytes in {n}" for n in wrong]
                    break  # right files installed: a second install proves nothing more
    allowed = {d.sha256 for d in dists.values()}
    allowed |= {hashlib.sha256(d.metadata or b"").hexdigest() for d in dists.values()}
    problems += await store_problems(tmp_path / "store", allowed)
    assert problems == [], "\n".join(problems)
    cases = CASES if client == "pip" else UV_CASES
    made = [r.done > 0 for r in bad.rules if any(f"hostile_{c}-" in r.match for c in cases)]
    assert all(made), [(r.match, r.done) for r in bad.rules]
    missing = [
        c for c in sorted(WRONG_CONTENT) if not _verification_events(logs, dists[c].filename)
    ]
    assert missing == [], f"no verification decision for: {missing}"
