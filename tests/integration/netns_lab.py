"""The network-namespace lab of test_deploy_netns.py: a test index in an upstream namespace, a
gateway namespace ("the airlock VM") forwarding between its two links, and a runner namespace
whose default route goes through the gateway; plus the pieces run in it (the index, airlock as
its systemd unit would run it, pip) and the probes (a TCP connect's errno, an HTTP GET, the
runner rule set's "refused" counter).

Every address is in 198.18.0.0/15 (benchmarking, RFC 2544) and exists only inside the namespaces
the lab creates and deletes.  Needs root, ``ip`` (iproute2) and ``nft`` (nftables).
"""

from __future__ import annotations

import asyncio
import contextlib
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

import pytest
from aiohttp import web

from tests.clients import client_env
from tests.require import require

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


def run(*argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
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
        r = run(
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


@contextlib.contextmanager
def build_lab(tmp_path: Path) -> Iterator[Lab]:
    """The three namespaces, their links and routes, and the runner's /etc/hosts; every process
    the lab started is stopped and everything is deleted on exit (require_netns_tools first)."""
    tag = f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
    names = Lab(f"al-up-{tag}", f"al-gw-{tag}", f"al-run-{tag}", tmp_path)
    created: list[str] = []
    hosts_dir = Path("/etc/netns") / names.runner
    netns_dir_existed = hosts_dir.parent.exists()
    try:
        for ns in (names.upstream, names.gateway, names.runner):
            r = run("ip", "netns", "add", ns, check=False)
            require(r.returncode == 0, f"the kernel refuses network namespaces: {r.stderr.strip()}")
            created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        r = run(*names.exec(names.runner, "nft", "list", "ruleset"), check=False)
        require(
            r.returncode == 0, f"the kernel refuses nftables in a namespace: {r.stderr.strip()}"
        )
        # Two links; both ends are created directly inside the namespaces (nothing on the host).
        run("ip", "link", "add", f"alg{tag}", "netns", names.gateway, "type", "veth",
            "peer", "name", f"alu{tag}", "netns", names.upstream)  # fmt: skip
        run("ip", "link", "add", f"alh{tag}", "netns", names.gateway, "type", "veth",
            "peer", "name", f"alr{tag}", "netns", names.runner)  # fmt: skip
        for ns, dev, addr in (
            (names.gateway, f"alg{tag}", f"{GATEWAY_UP_IP}/24"),
            (names.upstream, f"alu{tag}", f"{UPSTREAM_IP}/24"),
            (names.gateway, f"alh{tag}", f"{AIRLOCK_IP}/24"),
            (names.runner, f"alr{tag}", f"{RUNNER_IP}/24"),
        ):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", names.upstream, "route", "add", "default", "via", GATEWAY_UP_IP)
        run("ip", "-n", names.runner, "route", "add", "default", "via", AIRLOCK_IP)
        run(*names.exec(names.gateway, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
        # `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts: the runner's own name
        # for airlock, so the client configuration is used exactly as shipped.
        hosts_dir.mkdir(parents=True)
        (hosts_dir / "hosts").write_text(f"127.0.0.1 localhost\n{AIRLOCK_IP} airlock\n")
        yield names
    finally:
        for proc in names.procs:
            stop(proc)
        for ns in created:
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(hosts_dir, ignore_errors=True)
        if not netns_dir_existed:
            with contextlib.suppress(OSError):  # someone else's namespace uses it now
                hosts_dir.parent.rmdir()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def wait_for_line(proc: subprocess.Popen[bytes], expected: bytes, log: Path) -> None:
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


def airlock_command(lab: Lab, token: str) -> tuple[list[str], dict[str, str]]:
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


def pip_install(
    lab: Lab, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
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
