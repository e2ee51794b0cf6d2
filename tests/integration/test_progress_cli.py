"""Real ``airlock store fsck`` and ``airlock osv import`` runs: with stderr on a pseudo-terminal
they draw a progress line (then erase it before the summary); piped, stderr holds the summary
alone.  Exit code, report lines and summary are the same either way (issue #13)."""

from __future__ import annotations

import errno
import os
import pty
import subprocess
import sys
from pathlib import Path

from mirror_store.blobs import LocalBlobStore

DATA = Path(__file__).resolve().parents[1] / "data" / "osv" / "openssf"


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_")}
    return env | {"AIRLOCK_STORE__PATH": str(store)}


def _piped(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    r = subprocess.run(
        [sys.executable, "-m", "proxy", *args], check=False, env=env, capture_output=True, text=True
    )
    return r.returncode, r.stdout, r.stderr


def _on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout still piped); its bytes read to EOF."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)  # the child holds the only copy: EOF (EIO) once it exits
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError as e:  # Linux: EIO once the child's end is closed
            if e.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    err = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's newline mapping
    return proc.wait(), out, err


def _erased(line: str) -> str:
    return f"\r{line}\r{' ' * len(line)}\r"


def test_fsck_shows_progress_on_a_terminal_and_only_its_summary_when_piped(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path)
    digests = []
    for data in (b"one", b"two", b"three"):
        w = store.writer({})
        w.write(data)
        digests.append(w.commit())
    bad = store.path(digests[1])
    assert bad is not None
    bad.write_bytes(b"rot")
    args, env = ["store", "fsck", "--dry-run"], _env(tmp_path)

    code, out, err = _piped(args, env)
    assert code == 1
    assert out.startswith(f"BAD {digests[1]}: content hashes to ")
    assert err == "fsck: 3 blobs checked, 1 bad (dry run); 0 downloads in progress\n"

    tty_code, tty_out, tty_err = _on_terminal(args, env)
    assert (tty_code, tty_out) == (code, out)
    assert tty_err.startswith("\rfsck: 0/3 blobs checked (0%)")
    assert tty_err.endswith(_erased("fsck: 3/3 blobs checked (100%)") + err)


def test_osv_import_shows_progress_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    args = ["osv", "import", str(DATA), "--out", str(tmp_path / "osv.json")]
    code, out, err = _piped(args, _env(tmp_path))
    assert code == 0
    assert out.startswith("read 7 files: kept 5 malicious")
    assert err == ""

    tty_code, tty_out, tty_err = _on_terminal(args, _env(tmp_path))
    assert (tty_code, tty_out) == (code, out)
    assert tty_err.startswith("\rosv import: 0 files read")
    *drawn, blank, end = tty_err.split("\r")  # each redraw starts with \r
    assert drawn[0] == ""
    assert all(d.startswith("osv import: ") and d.endswith(" files read") for d in drawn[1:])
    assert (blank, end) == (" " * len(drawn[-1]), "")  # the line erased, and nothing else said
