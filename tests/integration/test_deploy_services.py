"""deploy/ run as far as this machine allows: systemd judges the unit, and compose's devpi
bootstrap script runs as written and creates the internal index airlock is configured with."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.require import require_netns_tools, require_systemd_analyze

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "airlock.service"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
DEVPI_START_TIMEOUT = 60.0


def _exec_start() -> str:
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            return line.removeprefix("ExecStart=").split()[0]
    raise AssertionError("the unit has no ExecStart")


def _fake_root(tmp_path: Path) -> Path:
    """A root where the unit is installed as the README says, with the system's own units for
    its dependencies and an executable where ExecStart points (systemd checks it exists)."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    program = root / _exec_start().lstrip("/")
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return root


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit file unchanged, without a single warning about
    it (unknown keys and bad values are only warnings, so the output is checked too)."""
    exe = require_systemd_analyze()
    root = _fake_root(tmp_path)
    r = subprocess.run(
        [exe, "verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    about_us = [line for line in (r.stdout + r.stderr).splitlines() if UNIT.name in line]
    assert r.returncode == 0, r.stdout + r.stderr
    assert about_us == []

    broken = root / "etc/systemd/system" / UNIT.name
    broken.write_text(
        UNIT.read_text().replace("PrivateTmp=yes", "PrivateTmp=yes\nProtectSystm=strict")
    )
    r = subprocess.run(
        [exe, "verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "ProtectSystm" in r.stdout + r.stderr, "the check notices a misspelt key"


def test_systemd_unit_is_hardened() -> None:
    """The hardening the deployment promises is in the unit, and systemd rates the unit's
    exposure "OK" (at most 2.0 of 10; systemd counts the threshold in tenths)."""
    exe = require_systemd_analyze()
    text = UNIT.read_text(encoding="utf-8")
    for line in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/airlock",
        "CapabilityBoundingSet=",
    ):
        assert f"\n{line}\n" in text, line
    r = subprocess.run(
        [exe, "security", "--offline=true", "--threshold=20", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "Overall exposure level" in r.stdout


DEVPI_PORT = 3141  # compose's, kept: each start gets a network namespace of its own
CLONE_NEWNET = 0x40000000
LOOPBACK_UP = 'ip link set lo up; exec sh -ec "$1"'  # then the script, as $1


def _devpi_script(data: Path) -> str:
    """compose.yaml's devpi command, with compose's $$ unescaped, and its data folder and marker
    file moved to this test's (each must be there to be moved).  The port stays: the script runs
    in a fresh network namespace, where nothing else can hold it."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    devpi = compose["services"]["devpi"]
    assert devpi["command"][:2] == ["sh", "-ec"]
    assert devpi["volumes"] == ["devpi-data:/data"]
    script = str(devpi["command"][2]).replace("$$", "$")
    assert f"--port {DEVPI_PORT} " in script
    moved = {"/tmp/ready": str(data / "ready"), "/data": str(data)}
    for old in moved:
        assert old in script, old
    return re.sub("|".join(map(re.escape, moved)), lambda m: moved[m.group(0)], script)


def _start_devpi(script: str, data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The script in a network namespace of its own (loopback up), until it marks itself ready:
    the marker is the script's own readiness signal (compose's healthcheck tests it), so it is
    polled, with the process's exit and a deadline as the other ways out."""
    (data / "ready").unlink(missing_ok=True)  # the script does too, but this loop may be first
    log = (data / "devpi.log").open("ab")
    proc = subprocess.Popen(
        [
            "unshare",
            "--net",
            "--",
            "sh",
            "-ec",
            'ip link set lo up; exec sh -ec "$1"',
            "sh",
            script,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + DEVPI_START_TIMEOUT
    while not (data / "ready").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                "devpi bootstrap did not finish:\n" + (data / "devpi.log").read_text()[-3000:]
            )
        time.sleep(0.2)  # polls the condition itself (no file-event API in the standard library)
    return proc


def _in_netns(pid: int, fn: Callable[[], T]) -> T:
    """fn() on a thread that has joined *pid*'s network namespace (a thread's own setting)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def joined() -> T:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into devpi's network namespace")
        finally:
            os.close(fd)
        return fn()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(joined).result()


def _get_json(url: str) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _simple_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return int(r.status)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_compose_devpi_bootstrap_creates_the_internal_index_and_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The devpi service's script, run as written (devpi-server from the test extra), creates an
    empty root/dev index (no base: nothing is mirrored through devpi) and, started again on the
    same data (a container restart), comes up without re-initialising."""
    require_netns_tools(monkeypatch)  # root and ip: a network namespace per start
    data = tmp_path / "devpi"
    data.mkdir()
    script = _devpi_script(data)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "DEVPI_ROOT_PASSWORD": "bootstrap-test",
        "PYTHONWARNINGS": "ignore",
    }
    url = f"http://127.0.0.1:{DEVPI_PORT}/root/dev"
    for attempt in ("first start", "restart"):
        proc = _start_devpi(script, data, env)
        try:
            index = _in_netns(proc.pid, lambda: _get_json(url))["result"]
            assert index["type"] == "stage", attempt
            assert list(index["bases"]) == [], attempt
            assert _in_netns(proc.pid, lambda: _simple_status(f"{url}/+simple/")) == 200
        finally:
            _stop(proc)
    log = (data / "devpi.log").read_text()
    assert log.count("created index root/dev") == 1, "the restart reused the index"
