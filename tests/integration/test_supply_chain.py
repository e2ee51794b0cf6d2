"""The supply-chain policy set end to end, with real pip, uv and a real devpi-server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from proxy.pypi.routes import POLICY_INDEX, STORED_INDEX
from proxy.pypi.sources import StoredIndex
from proxy.settings import PolicySettings, UpstreamSettings
from tests.clients import pip_install, run, uv_install
from tests.conftest import ManualClock, ProxyFactory
from tests.fakes.devpi import Devpi
from tests.fakes.dists import wheel
from tests.fakes.pypi_index import FakeIndex
from tests.ports import refusing_port


def _now_iso(hours_ago: float = 0) -> str:
    t = datetime.fromtimestamp(time.time() - hours_ago * 3600, tz=UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _data(policies: Path, **values: object) -> None:
    (policies / "data" / "pypi.json").write_text(json.dumps(values))


def _public(fake: FakeIndex) -> UpstreamSettings:
    return UpstreamSettings(name="public", url=fake.simple_url, kind="public")


def _installed(target: Path) -> set[str]:
    return {p.name for p in target.glob("*.dist-info")}


async def test_typosquat_refused_with_reason_and_the_real_name_installs(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add(wheel("requests", "2.0"), wheel("reqeusts", "2.0"))
    proxy = await start_proxy(_public(fake_index))

    ok = await pip_install(proxy.simple, "requests", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert "requests-2.0.dist-info" in _installed(tmp_path / "a")

    pinned = await pip_install(proxy.simple, "reqeusts==2.0", target=tmp_path / "b", home=tmp_path)
    assert pinned.returncode != 0
    assert "1 edit (transposition) from 'requests' (rank" in pinned.said, pinned.output

    unpinned = await uv_install(proxy.simple, "reqeusts", target=tmp_path / "c", home=tmp_path)
    assert unpinned.returncode != 0
    assert "1 edit (transposition) from 'requests' (rank" in unpinned.said, unpinned.output
    assert fake_index.requests["/files/reqeusts-2.0-py3-none-any.whl"] == 0


async def test_new_look_alike_is_refused_and_pip_and_uv_print_why(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    """A name whose evidence alone only warns (a keyboard slip at the end) is denied while the
    project is new; the reason reaches pip's and uv's stderr on an unpinned install, and the
    same kind of name with an old history installs."""
    fake_index.add(wheel("requests", "2.0"), wheel("requestx", "2.0"))  # old uploads
    fake_index.add(wheel("requestz", "2.0"), upload_time=_now_iso(hours_ago=10 * 24))
    proxy = await start_proxy(_public(fake_index))
    why = "'requestz' is 1 edit (keyboard slip) from 'requests' (rank"
    history = "first upload 10 days ago, 1 release"
    for install in (pip_install, uv_install):
        target = tmp_path / install.__name__
        refused = await install(proxy.simple, "requestz", target=target, home=tmp_path)
        assert refused.returncode != 0
        assert why in refused.said, refused.output
        assert history in refused.said, refused.output
        assert "typosquat.exempt" in refused.said, refused.output
        old = await install(proxy.simple, "requestx", target=target, home=tmp_path)
        assert old.returncode == 0, old.output
        assert "requestx-2.0.dist-info" in _installed(target)
    assert fake_index.requests["/files/requestz-2.0-py3-none-any.whl"] == 0


async def test_too_new_release_is_held_back_and_resolvers_fall_back(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add(wheel("tiny-lib", "1.2"), upload_time=_now_iso(hours_ago=3))
    proxy = await start_proxy(_public(fake_index))

    for install in (pip_install, uv_install):
        target = tmp_path / install.__name__
        run_ = await install(proxy.simple, "tiny-lib", target=target, home=tmp_path)
        assert run_.returncode == 0, run_.output
        assert "tiny_lib-1.1.dist-info" in _installed(target)  # 1.2 is too new

    pinned = await pip_install(proxy.simple, "tiny-lib==1.2", target=tmp_path / "p", home=tmp_path)
    assert pinned.returncode != 0
    assert "uploaded 3 hours ago" in pinned.said, pinned.output
    assert "cooldown" in pinned.said
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/pypi/files/tiny-lib/tiny_lib-1.2-py3-none-any.whl") as r:
            assert r.status == 403


async def test_a_page_decision_is_made_again_once_decision_ttl_has_passed(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path
) -> None:
    """Cached page decisions are re-evaluated in the background after ``policy.decision_ttl``,
    so a time-dependent rule moves on: a release held back by a 2-second cooldown is offered
    (and downloads) once it is old enough, with neither the page nor the policy changed.
    Time is a clock the test advances; nothing waits on the wall clock."""
    clock = ManualClock()
    upload = datetime.fromtimestamp(clock.now_ns() / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake_index.add(wheel("tiny-lib", "1.2"), upload_time=upload)
    _data(policies_dir, cooldown={"days": 2 / 86400})
    policy = PolicySettings(path=policies_dir, reload_interval=0, decision_ttl=60)
    proxy = await start_proxy(_public(fake_index), policy=policy, clock=clock)
    index = proxy.app[POLICY_INDEX]
    name = "tiny_lib-1.2-py3-none-any.whl"

    async def yanked() -> object:
        headers = {"Accept": "application/vnd.pypi.simple.v1+json"}
        async with s.get(proxy.simple + "tiny-lib/", headers=headers) as r:
            files = {f["filename"]: f for f in (await r.json(content_type=None))["files"]}
        return files[name].get("yanked", False)

    async with aiohttp.ClientSession() as s:
        first = await yanked()
        assert isinstance(first, str), first
        assert "cooldown" in first
        clock.advance(30)  # past the cooldown, within decision_ttl: the cached decision stands
        assert await yanked() == first
        await index.settled()
        assert await yanked() == first
        clock.advance(31)  # past decision_ttl: this answer is the old view, re-decided behind it
        assert await yanked() == first
        await index.settled()
        assert await yanked() is False
        async with s.get(proxy.url + "/pypi/files/tiny-lib/" + name) as r:
            assert r.status == 200
    assert fake_index.requests["/simple/tiny-lib/"] == 1  # the same page, decided again


async def test_cooldown_exemption_and_per_rule_monitor_mode(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    fake_index.add(wheel("tiny-lib", "1.2"), upload_time=_now_iso(hours_ago=3))
    _data(policies_dir, monitor_rules=["cooldown"])
    proxy = await start_proxy(_public(fake_index))
    run_ = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "m", home=tmp_path)
    assert run_.returncode == 0, run_.output
    assert "tiny_lib-1.2.dist-info" in _installed(tmp_path / "m")  # logged, not enforced


async def test_dependency_confusion_internal_devpi_wins(
    start_proxy: ProxyFactory, fake_index: FakeIndex, devpi: Devpi, tmp_path: Path
) -> None:
    """devpi hosts acme-utils 1.0; the public index a higher 9.0: clients get the internal one."""
    fake_index.add(wheel("acme-utils", "9.0"))
    proxy = await start_proxy(
        _public(fake_index),  # listed first on purpose: internal indexes are asked first anyway
        UpstreamSettings(name="corp", url=devpi.simple_url, kind="internal"),
    )
    for install in (pip_install, uv_install):
        target = tmp_path / install.__name__
        run_ = await install(proxy.simple, "acme-utils", target=target, home=tmp_path)
        assert run_.returncode == 0, run_.output
        assert _installed(target) == {"acme_utils-1.0.dist-info"}
    async with aiohttp.ClientSession() as s:
        async with s.get(
            proxy.simple + "acme-utils/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ) as r:
            doc = await r.json(content_type=None)
            assert r.headers["X-Airlock-Upstream"] == "corp"
    assert [f["filename"] for f in doc["files"]] == ["acme_utils-1.0-py3-none-any.whl"]
    assert "tracks" not in doc  # the internal project does not mirror the public one
    assert fake_index.requests["/simple/acme-utils/"] == 0


async def test_dependency_confusion_internal_index_down_refuses_public_answers(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add(wheel("acme-utils", "9.0"))
    with refusing_port() as down:
        proxy = await start_proxy(
            UpstreamSettings(
                name="corp", url=f"http://127.0.0.1:{down}/simple/", kind="internal", timeout=2.0
            ),
            _public(fake_index),
        )
        run_ = await uv_install(proxy.simple, "acme-utils", target=tmp_path / "x", home=tmp_path)
    assert run_.returncode != 0
    assert "internal index could not be asked" in run_.said, run_.output


async def test_pins_from_a_lock_file(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    lib10 = fake_index.file("tiny_lib-1.0-py3-none-any.whl").dist
    req = tmp_path / "requirements.txt"
    req.write_text(f"tiny-lib==1.0 --hash=sha256:{lib10.sha256}\n")
    imported = await run(
        "python",
        "-m",
        "proxy",
        "allow",
        "import",
        str(req),
        "--out",
        str(policies_dir / "lists" / "pins.json"),
        env=_env(),
    )
    assert imported.returncode == 0, imported.output
    _data(policies_dir, pins={"enforce": True})
    proxy = await start_proxy(_public(fake_index))
    ok = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert _installed(tmp_path / "a") == {"tiny_lib-1.0.dist-info"}  # 1.1 is not approved
    other = await uv_install(proxy.simple, "tiny-dep", target=tmp_path / "b", home=tmp_path)
    assert other.returncode != 0
    assert "not on the approved list" in other.said, other.output


async def test_known_malicious_versions_from_osv(
    start_proxy: ProxyFactory, fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    osv_dir = tmp_path / "osv" / "malicious" / "pypi" / "tiny-lib"
    osv_dir.mkdir(parents=True)
    (osv_dir / "MAL-2099-7.json").write_text(
        json.dumps(
            {
                "id": "MAL-2099-7",
                "modified": "2099-01-01T00:00:00Z",
                "summary": "credential stealer",
                "affected": [
                    {"package": {"ecosystem": "PyPI", "name": "tiny-lib"}, "versions": ["1.1"]}
                ],
            }
        )
    )
    imported = await run(
        "python",
        "-m",
        "proxy",
        "osv",
        "import",
        str(tmp_path / "osv"),
        "--out",
        str(policies_dir / "lists" / "osv.json"),
        env=_env(),
    )
    assert imported.returncode == 0, imported.output
    proxy = await start_proxy(_public(fake_index))
    ok = await pip_install(proxy.simple, "tiny-lib", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    assert _installed(tmp_path / "a") == {"tiny_lib-1.0.dist-info"}
    bad = await pip_install(proxy.simple, "tiny-lib==1.1", target=tmp_path / "b", home=tmp_path)
    assert bad.returncode != 0
    assert "known malicious (MAL-2099-7)" in bad.said, bad.output


async def test_revived_project_is_quarantined(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add(wheel("old-lib", "1.0"), upload_time="2015-05-05T00:00:00.000000Z")
    fake_index.add(wheel("old-lib", "1.1"), upload_time="2016-05-05T00:00:00.000000Z")
    proxy = await start_proxy(_public(fake_index), page_ttl=0)
    first = await pip_install(proxy.simple, "old-lib", target=tmp_path / "a", home=tmp_path)
    assert first.returncode == 0, first.output
    # The project is deleted and the name re-registered with a fresh history.
    del fake_index.projects["old-lib"]
    fake_index.add(wheel("old-lib", "5.0"), upload_time="2024-01-01T00:00:00.000000Z")
    # stale-while-revalidate: the stored page is answered once more while the new one is
    # fetched in the background; the new page is decided from the next request on
    async with aiohttp.ClientSession() as s, s.get(proxy.simple + "old-lib/") as r:
        assert "past its TTL" in r.headers["X-Airlock-Stale"]
    stored = proxy.app[STORED_INDEX]
    assert isinstance(stored, StoredIndex)
    await stored.settled()
    again = await uv_install(proxy.simple, "old-lib", target=tmp_path / "b", home=tmp_path)
    assert again.returncode != 0
    assert "quarantined" in again.said, again.output
    assert "re-registered" in again.said


async def test_provenance_regression_blocks_the_download(
    start_proxy: ProxyFactory, fake_index: FakeIndex, tmp_path: Path
) -> None:
    fake_index.add(wheel("signed", "1.0"), provenance="acme/signed")
    fake_index.add(wheel("signed", "2.0"), provenance="mallory/signed")
    proxy = await start_proxy(_public(fake_index))
    ok = await pip_install(proxy.simple, "signed==1.0", target=tmp_path / "a", home=tmp_path)
    assert ok.returncode == 0, ok.output
    bad = await pip_install(proxy.simple, "signed==2.0", target=tmp_path / "b", home=tmp_path)
    assert bad.returncode != 0
    assert "attested by GitHub:mallory/signed" in bad.said, bad.output


def _env() -> dict[str, str]:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


async def test_airlock_check_pypi_prints_decision_reasons_and_facts(
    fake_index: FakeIndex, policies_dir: Path, tmp_path: Path
) -> None:
    fake_index.add(wheel("requests", "2.0"), wheel("reqeusts", "2.0"))
    fake_index.add(wheel("tiny-lib", "1.2"), upload_time=_now_iso(hours_ago=3))
    env = _env() | {
        "AIRLOCK_STORE__PATH": str(tmp_path / "store"),
        "AIRLOCK_POLICY__PATH": str(policies_dir),
        "AIRLOCK_PYPI__UPSTREAMS": f'[{{name="public", url="{fake_index.simple_url}"}}]',
    }
    squat = await run("python", "-m", "proxy", "check", "pypi", "reqeusts", env=env)
    assert squat.returncode == 1, squat.output
    assert "pypi reqeusts: DENIED" in squat.stdout
    assert "[typosquat] 'reqeusts' is 1 edit (transposition) from 'requests'" in squat.stdout
    assert '"target": "requests"' in squat.stdout

    fresh = await run("python", "-m", "proxy", "check", "pypi", "tiny-lib==1.2", "--json", env=env)
    assert fresh.returncode == 1, fresh.output
    doc = json.loads(fresh.stdout)
    assert doc["allowed"] is False
    reasons = doc["files"]["tiny_lib-1.2-py3-none-any.whl"]["reasons"]
    assert reasons[0]["rule"] == "cooldown"

    ok = await run("python", "-m", "proxy", "check", "pypi", "tiny-lib==1.1", env=env)
    assert ok.returncode == 0, ok.output
    assert "tiny_lib-1.1-py3-none-any.whl: allowed" in ok.stdout
