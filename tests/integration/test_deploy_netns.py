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
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from tests.clients import client_env
from tests.require import require, require_netns_tools

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "nftables" / "airlock-runner.nft"
PIP_CONF = DEPLOY / "clients" / "pip.conf"

UPSTREAM_IP, UPSTREAM_PORT = "198.18.2.2", 8081
GATEWAY_UP_IP = "198.18.2.1"
AIRLOCK_IP = "198.18.1.1"
RUNNER_IP = "198.18.1.2"
RUNNER_ID = "ci-runner"  # the login in deploy/clients/netrc
START_TIMEOUT = 60.0
CLIENT_TIMEOUT = 120.0

# Run inside a namespace by the test's own interpreter: one TCP connect, its errno (0 = connected).
CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print(0)
except OSError as e:
    print(e.errno if e.errno is not None else -1)
"""
GET = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    print(r.status)
"""


def serve_index(host: str, port: int) -> None:
    """Entry point run inside the upstream namespace: the test index on host:port."""
    from tests.fakes.dists import wheel
    from tests.fakes.pypi_index import FakeIndex

    async def main() -> None:
        index = FakeIndex()
        index.add(wheel("tiny-lib", "1.0"))
        index.add(wheel("tiny-app", "2.0", requires=("tiny-lib>=1.0",)))
        async with index.running():
            assert index._runner is not None  # FakeIndex binds loopback; add the lab address
            await web.TCPSite(index._runner, host, port).start()
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())


# -- the lab ----------------------------------------------------------------------------------


def _run(*argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


@dataclass
class Lab:
    upstream: str
    gateway: str
    runner: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def exec(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    def py(self, ns: str, code: str, *args: str, timeout: float = 30) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.tmp)}
        r = subprocess.run(
            self.exec(ns, sys.executable, "-c", code, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        return (r.stdout + r.stderr).strip()

    def connect(self, ns: str, host: str, port: int) -> int:
        """errno of a TCP connect from ns (0: connected)."""
        out = self.py(ns, CONNECT, host, str(port))
        assert out.lstrip("-").isdigit(), out
        return int(out)

    def refused(self) -> int:
        """Packets the runner's rule set has refused so far."""
        r = _run(
            *self.exec(
                self.runner, "nft", "-j", "list", "counter", "inet", "airlock_runner", "refused"
            )
        )
        (counter,) = [o["counter"] for o in json.loads(r.stdout)["nftables"] if "counter" in o]
        return int(counter["packets"])

    def start(
        self, ns: str, argv: list[str], env: dict[str, str], log: Path, *, pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start argv in ns; stderr (and stdout unless *pipe*) goes to *log*."""
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.exec(ns, *argv),
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    require_netns_tools(monkeypatch)
    tag = f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
    names = Lab(f"al-up-{tag}", f"al-gw-{tag}", f"al-run-{tag}", tmp_path)
    created: list[str] = []
    hosts_dir = Path("/etc/netns") / names.runner
    netns_dir_existed = hosts_dir.parent.exists()
    try:
        for ns in (names.upstream, names.gateway, names.runner):
            r = _run("ip", "netns", "add", ns, check=False)
            require(r.returncode == 0, f"the kernel refuses network namespaces: {r.stderr.strip()}")
            created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        r = _run(*names.exec(names.runner, "nft", "list", "ruleset"), check=False)
        require(
            r.returncode == 0, f"the kernel refuses nftables in a namespace: {r.stderr.strip()}"
        )
        # Two links; both ends are created directly inside the namespaces (nothing on the host).
        _run("ip", "link", "add", f"alg{tag}", "netns", names.gateway, "type", "veth",
             "peer", "name", f"alu{tag}", "netns", names.upstream)  # fmt: skip
        _run("ip", "link", "add", f"alh{tag}", "netns", names.gateway, "type", "veth",
             "peer", "name", f"alr{tag}", "netns", names.runner)  # fmt: skip
        for ns, dev, addr in (
            (names.gateway, f"alg{tag}", f"{GATEWAY_UP_IP}/24"),
            (names.upstream, f"alu{tag}", f"{UPSTREAM_IP}/24"),
            (names.gateway, f"alh{tag}", f"{AIRLOCK_IP}/24"),
            (names.runner, f"alr{tag}", f"{RUNNER_IP}/24"),
        ):
            _run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        _run("ip", "-n", names.upstream, "route", "add", "default", "via", GATEWAY_UP_IP)
        _run("ip", "-n", names.runner, "route", "add", "default", "via", AIRLOCK_IP)
        _run(*names.exec(names.gateway, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
        # `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts: the runner's own name
        # for airlock, so the client configuration is used exactly as shipped.
        hosts_dir.mkdir(parents=True)
        (hosts_dir / "hosts").write_text(f"127.0.0.1 localhost\n{AIRLOCK_IP} airlock\n")
        yield names
    finally:
        for proc in names.procs:
            _stop(proc)
        for ns in created:
            _run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(hosts_dir, ignore_errors=True)
        if not netns_dir_existed:
            with contextlib.suppress(OSError):  # someone else's namespace uses it now
                hosts_dir.parent.rmdir()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _wait_for_line(proc: subprocess.Popen[bytes], expected: bytes, log: Path) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(remaining, 0))
        line = proc.stdout.readline() if ready else b""
        if line.strip() == expected:
            return
        if not line or remaining <= 0:
            pytest.fail(f"no {expected!r} from {proc.args!r}:\n{log.read_text()[-3000:]}")


def _airlock(lab: Lab, token: str) -> tuple[list[str], dict[str, str]]:
    """The VM recipe's airlock: the unit's ExecStart (deploy/systemd/airlock.service) with the
    shipped airlock.toml, run by this interpreter, and the unit's Environment=; overridden only
    where a lab must differ: store and policies in tmp, the lab's upstream, and the runner's
    token (an admin writes its sha256 in airlock.toml's [[access.clients]])."""
    unit = (DEPLOY / "systemd" / "airlock.service").read_text(encoding="utf-8")
    exec_start = re.search(r"(?m)^ExecStart=(.*)$", unit)
    assert exec_start is not None
    argv = shlex.split(exec_start.group(1))
    assert argv[0].endswith("/bin/airlock")
    args = argv[1:]
    args[args.index("--config") + 1] = str(DEPLOY / "systemd" / "airlock.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    env.update(v.split("=", 1) for v in re.findall(r"(?m)^Environment=(.*)$", unit))
    policies = lab.tmp / "policies"
    shutil.copytree(REPO / "policies", policies)
    upstream = f"http://{UPSTREAM_IP}:{UPSTREAM_PORT}/simple/"
    digest = hashlib.sha256(token.encode()).hexdigest()
    env |= {
        "AIRLOCK_STORE__PATH": str(lab.tmp / "store"),
        "AIRLOCK_POLICY__PATH": str(policies),
        "AIRLOCK_PYPI__UPSTREAMS": f'[{{name="upstream", url="{upstream}", kind="public"}}]',
        "AIRLOCK_ACCESS__CLIENTS": f'[{{id="{RUNNER_ID}", token_sha256="{digest}"}}]',
    }
    return [sys.executable, "-m", "proxy", *args], env


def _pip(lab: Lab, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = client_env(lab.tmp / "home")  # HOME: the runner's ~/.netrc is read from there
    if config is not None:
        env["PIP_CONFIG_FILE"] = str(config)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--retries",
        "1",
        "--timeout",
        "5",
        *args,
    ]
    return subprocess.run(
        lab.exec(lab.runner, *argv),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env=env,
        check=False,
    )


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
    code = "from tests.integration.test_deploy_netns import serve_index; serve_index(*{!r})"
    code = code.format((UPSTREAM_IP, UPSTREAM_PORT))
    upstream = lab.start(
        lab.upstream, [sys.executable, "-c", code], dict(os.environ), index_log, pipe=True
    )
    _wait_for_line(upstream, b"ready", index_log)

    token = secrets.token_urlsafe(24)
    argv, env = _airlock(lab, token)
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

    rules = _run(*lab.exec(lab.runner, "nft", "-D", f"airlock_addr={AIRLOCK_IP}",
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
    direct = _pip(
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
    through = _pip(lab, "--target", str(target), "tiny-app", config=PIP_CONF)
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
    r = _run("ip", "netns", "add", ns, check=False)
    require(r.returncode == 0, f"the kernel refuses network namespaces: {r.stderr.strip()}")
    try:
        example = (DEPLOY / "nftables" / "nftables.conf.example").read_text(encoding="utf-8")
        installed = '"/etc/nftables.d/airlock-runner.nft"'
        assert example.count(installed) == 1
        conf = tmp_path / "nftables.conf"
        conf.write_text(example.replace(installed, json.dumps(str(RULES))))
        check = _run("ip", "netns", "exec", ns, "nft", "-c", "-f", str(conf), check=False)
        assert check.returncode == 0, check.stderr
        broken = tmp_path / "broken.conf"
        broken.write_text(conf.read_text().replace("define airlock_port = 8080\n", ""))
        check = _run("ip", "netns", "exec", ns, "nft", "-c", "-f", str(broken), check=False)
        assert check.returncode != 0, "an undefined variable is an error, not an open port"
    finally:
        _run("ip", "netns", "del", ns, check=False)
