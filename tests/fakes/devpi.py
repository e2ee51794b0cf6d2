"""A real devpi-server as the internal index, started once per test session on
the port it binds (port 0, read back from its output)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
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


SERVING = re.compile(rb"Serving on http://127\.0\.0\.1:(\d+)")


def serving_port(
    proc: subprocess.Popen[bytes], log: BinaryIO, timeout: float
) -> tuple[int, threading.Thread]:
    """The port devpi-server (waitress) bound, read from its output ("Serving on …", printed
    once the socket listens), which is copied to *log* all along; RuntimeError if it exits or
    says nothing of the kind within *timeout*.  The thread copying the output ends when the
    process does."""
    assert proc.stdout is not None
    found: list[int] = []
    listening = threading.Event()

    def pump(out: BinaryIO) -> None:
        for line in out:
            log.write(line)
            log.flush()
            if not found and (m := SERVING.search(line)):
                found.append(int(m[1]))
                listening.set()
        listening.set()  # the process closed its output: it is gone

    copier = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
    copier.start()
    if not listening.wait(timeout) or not found:
        proc.kill()
        proc.wait()
        copier.join()
        raise RuntimeError("devpi-server did not start listening")
    return found[0], copier


class Devpi:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0  # known once the server listens
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._copier: threading.Thread | None = None
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
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._env,
        )
        try:
            self.port, self._copier = serving_port(self._proc, log, STARTUP_TIMEOUT)
        except RuntimeError as e:
            tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{e}: {tail}") from None
        self.url = f"http://127.0.0.1:{self.port}"
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
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._copier is not None:
            self._copier.join()  # the output is at its end: the process is gone
            self._copier = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()  # the copier's end of the pipe: no ResourceWarning at exit
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
