"""Real components some tests need: in CI a missing one fails the test, elsewhere it skips.

``make test`` installs every component (docs/testing.md lists which target provides which), so in
CI (``CI=true``, what ``.ci/run`` runs under) a missing one is a broken build, never a quiet
skip.  A developer's run without ``CI`` may still skip, with the same one-line reason naming the
make target or package that provides it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

GOLIB = (
    "opa-golib-python-bindings is not installed: `make test` installs it into .venv "
    "(GOLIB in the Makefile)"
)
CHROMIUM = "chromium is not installed: `make deps-chromium` (as root) installs Debian's chromium"
SYSTEMD = "systemd-analyze is not installed: `make deps-system` (as root) installs Debian's systemd"
NETNS_TOOLS = "not installed: `make deps-system` (as root) installs Debian's iproute2 and nftables"
SBIN = ("/usr/sbin", "/sbin")


def in_ci() -> bool:
    """True under CI (``CI=true``, as ``.ci/run`` runs and CI services set)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(condition: bool, reason: str) -> None:
    """Go on if *condition* holds; otherwise fail under CI, skip elsewhere, saying *reason*."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_golib() -> None:
    """The real OPA engine (opa-golib-python-bindings), in-process or behind the OPA stand-in."""
    from proxy.policy.golib import available

    require(available(), GOLIB)


def require_chromium() -> str:
    """Debian's chromium (never a browser download); its path."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(path).exists(), CHROMIUM)
    return path


def require_systemd_analyze() -> str:
    """systemd-analyze and the system's unit files it checks dependencies against; its path."""
    exe = shutil.which("systemd-analyze")
    require(exe is not None and Path("/usr/lib/systemd/system").is_dir(), SYSTEMD)
    assert exe is not None
    return exe


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root (CI runs as root)")


def require_netns_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Root, ip and nft; sbin (where they live) is put on PATH, which a non-login shell may
    leave out."""
    require_root("network namespaces")
    monkeypatch.setenv("PATH", os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
    require(not missing, f"{', '.join(missing)} {NETNS_TOOLS}")
