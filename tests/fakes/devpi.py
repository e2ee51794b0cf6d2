"""A real devpi-server as the internal index, started once per test session on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .dists import Dist

PASSWORD = "airlock-tests"
STARTUP_TIMEOUT = 120.0


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (it is part of the test extra)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Devpi:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "DEVPI_"))}
        self._env["HOME"] = str(root)

    @property
    def simple_url(self) -> str:
        return f"{self.url}/root/dev/+simple/"

    def _client(self, *args: str) -> None:
        subprocess.run(
            [_bin("devpi"), "--clientdir", str(self.root / "client"), *args],
            check=True,
            capture_output=True,
            env=self._env,
            timeout=120,
        )

    def start(self) -> None:
        server_dir = self.root / "server"
        subprocess.run(
            [
                _bin("devpi-init"),
                "--serverdir",
                str(server_dir),
                "--no-root-pypi",
                "--root-passwd",
                PASSWORD,
            ],
            check=True,
            capture_output=True,
            env=self._env,
            timeout=120,
        )
        log = self._log = (self.root / "server.log").open("wb")
        self._proc = subprocess.Popen(
            [
                _bin("devpi-server"),
                "--serverdir",
                str(server_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/+api", timeout=2):
                    break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "devpi-server did not start: "
                        + (self.root / "server.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.3)
        self._client("use", self.url)
        self._client("login", "root", "--password", PASSWORD)
        self._client("index", "-c", "dev", "bases=", "volatile=True")
        self._client("use", "root/dev")

    def upload(self, *dists: Dist) -> None:
        folder = self.root / "upload"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for d in dists:
            (folder / d.filename).write_bytes(d.data)
        self._client("upload", "--from-dir", str(folder))

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def running_devpi(root: Path) -> Iterator[Devpi]:
    devpi = Devpi(root)
    try:
        devpi.start()
        yield devpi
    finally:
        devpi.stop()
