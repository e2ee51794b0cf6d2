"""Exact pins from lock files (``uv.lock``, PEP 751 ``pylock.toml``) and format detection.

``uv.lock``: every ``[[package]]`` whose ``source`` is a ``registry`` gives a pin of its
``version`` with the sha256 digests of ``sdist.hash`` and ``wheels[].hash`` (``"sha256:<hex>"``).
Packages from other sources (the ``editable``/``virtual`` project itself, ``git``, ``url``,
``path``, ``directory``) are not served by an index and are skipped with a note.

``pylock.toml`` / ``pylock.<name>.toml`` (PEP 751): every ``[[packages]]`` entry with a
``version`` gives a pin with ``sdist.hashes.sha256`` and ``wheels[].hashes.sha256``; entries
installed from ``vcs``, ``directory`` or ``archive`` are skipped with a note.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .pins import SHA256_HEX, Pin, PinFile, PinsError
from .pins_requirements import parse_requirements

FORMATS = ("requirements", "uv.lock", "pylock")
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")


def detect_format(path: Path) -> str:
    """``requirements``, ``uv.lock`` or ``pylock``: by file name, else by content."""
    name = path.name
    if name == "uv.lock":
        return "uv.lock"
    if _PYLOCK_NAME.match(name):
        return "pylock"
    if name.endswith(".txt"):
        return "requirements"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "requirements"
    if "lock-version" in doc and isinstance(doc.get("packages"), list):
        return "pylock"
    if isinstance(doc.get("package"), list) and "version" in doc:
        return "uv.lock"
    return "requirements"


def read_pin_file(path: Path, fmt: str | None = None) -> PinFile:
    """Pins of one file; ``fmt`` forces a format (one of :data:`FORMATS`)."""
    if not path.is_file():
        raise PinsError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt == "requirements":
        return parse_requirements(path)
    if fmt == "uv.lock":
        return parse_uv_lock(path)
    if fmt == "pylock":
        return parse_pylock(path)
    raise PinsError(f"{path}: unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PinsError(f"{path}: cannot read TOML: {e}") from e


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise PinsError(f"{where} must be an array of tables")
    return value


def _name_version(pkg: dict[str, Any], where: str) -> tuple[str, str | None]:
    name, version = pkg.get("name"), pkg.get("version")
    if not isinstance(name, str) or not name:
        raise PinsError(f"{where}: 'name' must be a non-empty string")
    if version is not None and (not isinstance(version, str) or not version):
        raise PinsError(f"{where}: 'version' must be a non-empty string")
    return name, version


def _digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or not SHA256_HEX.match(value.lower()):
        raise PinsError(f"{where}: not a sha256 hex digest: {value!r}")
    return value.lower()


def parse_uv_lock(path: Path) -> PinFile:
    doc = _load_toml(path)
    if not isinstance(doc.get("version"), int):
        raise PinsError(f"{path}: not a uv.lock file (no integer 'version')")
    pins: list[Pin] = []
    notes: list[str] = []
    for i, pkg in enumerate(_tables(doc.get("package"), f"{path}: [[package]]")):
        where = f"{path}: package[{i}]"
        name, version = _name_version(pkg, where)
        source = pkg.get("source")
        if not isinstance(source, dict) or "registry" not in source:
            kind = next(iter(source), "unknown") if isinstance(source, dict) else "no"
            notes.append(f"{path}: skipped {name} ({kind} source, not from an index)")
            continue
        if version is None:
            raise PinsError(f"{where}: registry package {name} has no version")
        hashes: list[str] = []
        files = [pkg.get("sdist"), *_tables(pkg.get("wheels"), f"{where}.wheels")]
        for dist in files:
            if not isinstance(dist, dict) or "hash" not in dist:
                continue
            algo, sep, digest = str(dist["hash"]).partition(":")
            if sep and algo == "sha256":
                hashes.append(_digest(digest, f"{where} ({name})"))
            elif sep:
                notes.append(f"{path}: ignored a {algo} hash of {name} (only sha256 is kept)")
            else:
                raise PinsError(f"{where} ({name}): malformed hash {dist['hash']!r}")
        pins.append(
            Pin(canonicalize_name(name), version, tuple(dict.fromkeys(hashes)), f"{path}: {name}")
        )
    return PinFile("uv.lock", (path,), tuple(pins), tuple(notes))


def parse_pylock(path: Path) -> PinFile:
    doc = _load_toml(path)
    lock_version = doc.get("lock-version")
    if not isinstance(lock_version, str):
        raise PinsError(f"{path}: not a pylock file (no 'lock-version')")
    if not lock_version.startswith("1."):
        raise PinsError(f"{path}: unsupported lock-version {lock_version!r} (expected 1.x)")
    pins: list[Pin] = []
    notes: list[str] = []
    for i, pkg in enumerate(_tables(doc.get("packages"), f"{path}: [[packages]]")):
        where = f"{path}: packages[{i}]"
        name, version = _name_version(pkg, where)
        direct = [kind for kind in ("vcs", "directory", "archive") if kind in pkg]
        if direct:
            notes.append(f"{path}: skipped {name} ({direct[0]}, not from an index)")
            continue
        if version is None:
            notes.append(f"{path}: skipped {name} (no version)")
            continue
        hashes: list[str] = []
        files = [pkg.get("sdist"), *_tables(pkg.get("wheels"), f"{where}.wheels")]
        for dist in files:
            if not isinstance(dist, dict):
                continue
            digests = dist.get("hashes")
            if not isinstance(digests, dict):
                raise PinsError(f"{where} ({name}): every sdist/wheel needs a 'hashes' table")
            if "sha256" in digests:
                hashes.append(_digest(digests["sha256"], f"{where} ({name})"))
            else:
                notes.append(f"{path}: a file of {name} has no sha256 hash (only sha256 is kept)")
        pins.append(
            Pin(canonicalize_name(name), version, tuple(dict.fromkeys(hashes)), f"{path}: {name}")
        )
    return PinFile("pylock", (path,), tuple(pins), tuple(notes))
