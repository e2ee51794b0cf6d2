"""The bare-VM recipe, for real: a CI runner whose only egress is airlock, built with Linux network
namespaces, veth pairs and the shipped nftables rules.

    upstream ns              gateway ns ("the airlock VM")             runner ns
    test index           veth                                   veth
    198.18.2.2:8081 ---------- 198.18.2.1 | 198.18.1.1:8080 airlock ---------- 198.18.1.2

The gateway forwards between its two links and the runner's default route goes through it, so
without a firewall the runner reaches the upstream index directly; the test asserts that first,
so routing is not what stops it later.  airlock runs as the systemd unit would run it (its
ExecStart with ``deploy/systemd/airlock.toml``).  Then ``deploy/nftables/airlock-runner.nft`` is
loaded unchanged in the runner: the direct connection is rejected (EHOSTUNREACH, and the rule
set's "refused" counter counts it), airlock refuses the runner until it presents its token, and
real pip, configured by ``deploy/clients/pip.conf`` and ``deploy/clients/netrc`` as shipped
(``airlock`` resolves through the runner's own /etc/hosts), installs through airlock.

Every address is in 198.18.0.0/15 (benchmarking, RFC 2544) and exists only inside the namespaces
this test creates and deletes.  Needs root, ``ip`` (iproute2) and ``nft`` (nftables).
The lab itself (namespaces, links, the processes run in them) is in netns_lab.py.
"""

from __future__ import annotations

import configparser
import errno
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.netns_lab import (
    AIRLOCK_IP,
    DEPLOY,
    GET,
    PIP_CONF,
    RULES,
    RUNNER_ID,
    START_TIMEOUT,
    UPSTREAM_IP,
    UPSTREAM_PORT,
    Lab,
    airlock_command,
    build_lab,
    pip_install,
    run,
    wait_for_line,
)
from tests.require import require, require_netns_tools


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    require_netns_tools(monkeypatch)
    with build_lab(tmp_path) as names:
        yield names


# -- the test ---------------------------------------------------------------------------------


def test_runner_installs_through_airlock_and_cannot_reach_the_upstream(lab: Lab) -> None:
    """In the runner namespace with the shipped rules loaded: the upstream that was reachable
    before the rules is refused by the firewall (its counter moves), for a socket and for pip;
    airlock refuses the runner without its token; with the shipped pip.conf and netrc, pip
    installs tiny-app and its dependency through airlock, decided for client ci-runner."""
    pip_conf = configparser.ConfigParser()
    pip_conf.read(PIP_CONF)
    index = urlsplit(pip_conf["global"]["index-url"])
    assert index.hostname == "airlock"
    assert pip_conf["global"]["trusted-host"] == index.hostname
    airlock_port = index.port
    assert airlock_port is not None

    index_log = lab.tmp / "index.log"
    code = "from tests.integration.netns_lab import serve_index; serve_index(*{!r})"
    code = code.format((UPSTREAM_IP, UPSTREAM_PORT))
    upstream = lab.start(
        lab.upstream, [sys.executable, "-c", code], dict(os.environ), index_log, pipe=True
    )
    wait_for_line(upstream, b"ready", index_log)

    token = secrets.token_urlsafe(24)
    argv, env = airlock_command(lab, token)
    airlock_log = lab.tmp / "airlock.log"
    airlock = lab.start(lab.gateway, argv, env, airlock_log)
    readyz = f"http://{AIRLOCK_IP}:{airlock_port}/readyz"
    deadline = time.monotonic() + START_TIMEOUT
    while lab.py(lab.runner, GET, readyz) != "200":
        if airlock.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"airlock did not become ready:\n{airlock_log.read_text()[-3000:]}")
        time.sleep(0.3)

    # Control: without the rules, the runner reaches the upstream index itself (via the gateway).
    assert lab.connect(lab.runner, UPSTREAM_IP, UPSTREAM_PORT) == 0
    assert lab.connect(lab.runner, AIRLOCK_IP, airlock_port) == 0

    rules = run(*lab.exec(lab.runner, "nft", "-D", f"airlock_addr={AIRLOCK_IP}",
                          "-D", f"airlock_port={airlock_port}", "-f", str(RULES)))  # fmt: skip
    assert rules.returncode == 0

    before = lab.refused()
    assert lab.connect(lab.runner, UPSTREAM_IP, UPSTREAM_PORT) == errno.EHOSTUNREACH
    assert lab.refused() > before, "the firewall is what refused it"
    before = lab.refused()
    assert lab.connect(lab.runner, AIRLOCK_IP, UPSTREAM_PORT) == errno.EHOSTUNREACH
    assert lab.refused() > before, "airlock's address, but not its port"
    assert lab.connect(lab.runner, AIRLOCK_IP, airlock_port) == 0

    before = lab.refused()
    direct = pip_install(
        lab,
        "--index-url", f"http://{UPSTREAM_IP}:{UPSTREAM_PORT}/simple/",
        "--trusted-host", UPSTREAM_IP,
        "--target", str(lab.tmp / "direct"),
        "tiny-app",
    )  # fmt: skip
    assert direct.returncode != 0, direct.stdout + direct.stderr
    assert "No route to host" in direct.stdout + direct.stderr  # pip's retry warning says why
    assert lab.refused() > before

    # A runner airlock does not know is refused by airlock itself (the identity of the trust
    # feature: anonymous requests only from loopback); the shipped netrc makes it known.
    page = f"{index.scheme}://{index.netloc}{index.path}tiny-app/"
    assert "HTTP Error 401" in lab.py(lab.runner, GET, page)
    home = lab.tmp / "home"
    home.mkdir(exist_ok=True)
    netrc = (DEPLOY / "clients" / "netrc").read_text(encoding="utf-8")
    assert netrc.count("RUNNER_TOKEN") == 1
    (home / ".netrc").write_text(netrc.replace("RUNNER_TOKEN", token))
    (home / ".netrc").chmod(0o600)

    target = lab.tmp / "through-airlock"
    through = pip_install(lab, "--target", str(target), "tiny-app", config=PIP_CONF)
    assert through.returncode == 0, (
        through.stdout + through.stderr + airlock_log.read_text()[-3000:]
    )
    assert (target / "tiny_app" / "__init__.py").read_text() == "__version__ = '2.0'\n"
    assert (target / "tiny_lib" / "__init__.py").exists()
    blobs = [p for p in (lab.tmp / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) >= 2, "both wheels came through airlock's store"
    events = [json.loads(line) for line in airlock_log.read_text().splitlines() if line[:1] == "{"]
    decided = {e["target"] for e in events if e.get("event") == "decision" and e["allow"]}
    assert any("tiny_app-2.0" in t for t in decided), decided
    clients = {e["client"] for e in events if e.get("event") == "decision"}
    assert clients == {RUNNER_ID}, "every decision names the runner"


def test_boot_time_example_loads_the_same_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nftables.conf.example (defines + include of the shipped file) passes `nft -c` as written,
    except that its include names this checkout's copy of the rules."""
    require_netns_tools(monkeypatch)
    ns = f"al-chk-{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
    r = run("ip", "netns", "add", ns, check=False)
    require(r.returncode == 0, f"the kernel refuses network namespaces: {r.stderr.strip()}")
    try:
        example = (DEPLOY / "nftables" / "nftables.conf.example").read_text(encoding="utf-8")
        installed = '"/etc/nftables.d/airlock-runner.nft"'
        assert example.count(installed) == 1
        conf = tmp_path / "nftables.conf"
        conf.write_text(example.replace(installed, json.dumps(str(RULES))))
        check = run("ip", "netns", "exec", ns, "nft", "-c", "-f", str(conf), check=False)
        assert check.returncode == 0, check.stderr
        broken = tmp_path / "broken.conf"
        broken.write_text(conf.read_text().replace("define airlock_port = 8080\n", ""))
        check = run("ip", "netns", "exec", ns, "nft", "-c", "-f", str(broken), check=False)
        assert check.returncode != 0, "an undefined variable is an error, not an open port"
    finally:
        run("ip", "netns", "del", ns, check=False)
