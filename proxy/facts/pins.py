"""Approved versions ("pins") per project, as facts for the policy.

``airlock allow import`` (:mod:`proxy.facts.pins_cli`) reads hash-pinned requirements files,
``uv.lock`` and ``pylock.toml`` (parsers in :mod:`proxy.facts.pins_requirements` and
:mod:`proxy.facts.pins_locks`) and merges their pins into ``policies/lists/pins.json``::

    {"sources": [{"file": "...", "imported": "YYYY-MM-DD", "format": "requirements"}],
     "projects": {"<canonical-name>": {"versions": ["1.2.3", ...], "sha256": ["<hex>", ...]}}}

Hashes are kept per project (the union over its pinned versions and files), lowercase hex.

:class:`PinIndex` answers "is this project pinned, is this version one of its pins, is this file
one of its hashes?".  Versions compare as PEP 440 versions (``1.0`` == ``1.0.0``; a version that
does not parse compares as written); hashes compare case-insensitively.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from .listfile import load_document

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class PinsError(ValueError):
    """A pins list or a lock/requirements file is malformed, or holds lines that are not pins."""


@dataclass(frozen=True, slots=True)
class Pin:
    """One exact pin read from a file."""

    name: str  # canonical (PEP 503)
    version: str  # as written
    sha256: tuple[str, ...] = ()  # lowercase hex digests of the allowed files
    origin: str = ""  # "file:line" or "file: package name", for messages
    marker: str | None = None  # environment marker, kept for reference; pins ignore it


@dataclass(frozen=True, slots=True)
class PinFile:
    """What one imported file yielded."""

    format: str  # "requirements", "uv.lock" or "pylock"
    files: tuple[Path, ...]  # every file read (a requirements file and its -r/-c includes)
    pins: tuple[Pin, ...]
    notes: tuple[str, ...] = ()  # what was skipped or ignored, for the operator


@dataclass(frozen=True, slots=True)
class ProjectPins:
    versions: frozenset[str]  # as written in the imported files
    sha256: frozenset[str]  # lowercase hex
    normalized: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = frozenset(canonicalize_version(v) for v in self.versions)
        object.__setattr__(self, "normalized", keys)

    def allows_version(self, version: str) -> bool:
        return version in self.versions or canonicalize_version(version) in self.normalized

    def allows_hash(self, sha256: str) -> bool:
        return sha256.strip().lower() in self.sha256


@dataclass(frozen=True, slots=True)
class PinVerdict:
    pinned_project: bool  # the project has pins at all
    version_ok: bool  # the version is one of its pins (False when not pinned)
    hash_ok: bool | None  # the digest is one of its hashes; None = not checked

    def to_input(self) -> dict[str, bool | None]:
        """The shape the policy input expects."""
        return {
            "pinned_project": self.pinned_project,
            "version_ok": self.version_ok,
            "hash_ok": self.hash_ok,
        }


NOT_PINNED = PinVerdict(pinned_project=False, version_ok=False, hash_ok=None)


class PinIndex:
    """Pins by canonical project name; build with :meth:`load`."""

    __slots__ = ("_projects", "sources")

    def __init__(
        self, projects: Mapping[str, ProjectPins], sources: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self._projects = dict(projects)
        self.sources = tuple(dict(s) for s in sources)

    @classmethod
    def load(cls, path: Path) -> PinIndex:
        return load_document(path, cls.from_document, PinsError, "pins list")

    @classmethod
    def from_document(cls, doc: Any) -> PinIndex:
        """Validate a parsed ``pins.json`` document."""
        sources, projects = _validate(doc)
        pins = {
            name: ProjectPins(frozenset(entry["versions"]), frozenset(entry["sha256"]))
            for name, entry in projects.items()
        }
        return cls(pins, sources)

    def __len__(self) -> int:
        return len(self._projects)

    def names(self) -> list[str]:
        return sorted(self._projects)

    def for_project(self, name: str) -> ProjectPins | None:
        return self._projects.get(canonicalize_name(name))

    def check(self, name: str, version: str, sha256: str | None = None) -> PinVerdict:
        """Verdict for one release (and file, when its sha256 is known).

        ``hash_ok`` is None when no digest is given or the project has no recorded hashes.
        """
        pins = self.for_project(name)
        if pins is None:
            return NOT_PINNED
        hash_ok = None if sha256 is None or not pins.sha256 else pins.allows_hash(sha256)
        return PinVerdict(True, pins.allows_version(version), hash_ok)


def _validate(doc: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[str]]]]:
    if not isinstance(doc, dict):
        raise PinsError("top level must be an object")
    sources, projects = doc.get("sources", []), doc.get("projects")
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        raise PinsError("'sources' must be a list of objects")
    if not isinstance(projects, dict):
        raise PinsError("'projects' must be an object keyed by project name")
    out: dict[str, dict[str, list[str]]] = {}
    for name, entry in projects.items():
        if not isinstance(entry, dict):
            raise PinsError(f"projects[{name!r}] must be an object")
        versions, hashes = entry.get("versions", []), entry.get("sha256", [])
        if not isinstance(versions, list) or not all(isinstance(v, str) and v for v in versions):
            raise PinsError(f"projects[{name!r}].versions must be a list of strings")
        if not isinstance(hashes, list) or not all(
            isinstance(h, str) and SHA256_HEX.match(h.lower()) for h in hashes
        ):
            raise PinsError(f"projects[{name!r}].sha256 must be a list of 64-digit hex digests")
        merged = out.setdefault(canonicalize_name(name), {"versions": [], "sha256": []})
        merged["versions"].extend(versions)
        merged["sha256"].extend(h.lower() for h in hashes)
    return [dict(s) for s in sources], out


def merge_pins(
    existing: Mapping[str, Any] | None,
    pins: Iterable[Pin],
    sources: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """A ``pins.json`` document: ``existing`` (None = start over) plus ``pins`` and ``sources``.

    A source whose file is listed again replaces the older entry (newer date, same place).
    """
    old_sources, old_projects = _validate(existing) if existing is not None else ([], {})
    projects: dict[str, tuple[list[str], set[str]]] = {
        name: (list(entry["versions"]), set(entry["sha256"]))
        for name, entry in old_projects.items()
    }
    for pin in pins:
        versions, hashes = projects.setdefault(canonicalize_name(pin.name), ([], set()))
        versions.append(pin.version)
        hashes.update(h.lower() for h in pin.sha256)
    new_sources = [dict(s) for s in sources]
    replaced = {s.get("file") for s in new_sources}
    kept = [s for s in old_sources if s.get("file") not in replaced]
    return {
        "sources": kept + new_sources,
        "projects": {
            name: {"versions": sorted_versions(versions), "sha256": sorted(hashes)}
            for name, (versions, hashes) in sorted(projects.items())
        },
    }


def sorted_versions(versions: Iterable[str]) -> list[str]:
    """Unique by PEP 440 equality (first spelling wins), in version order; unparseable last."""
    unique: dict[str, str] = {}
    for v in versions:
        unique.setdefault(canonicalize_version(v), v)

    def key(v: str) -> tuple[int, Version | None, str]:
        try:
            return (0, Version(v), v)
        except InvalidVersion:
            return (1, None, v)

    return sorted(unique.values(), key=key)


def source_entry(file: Path, fmt: str, imported: dt.date) -> dict[str, str]:
    return {"file": str(file), "imported": imported.isoformat(), "format": fmt}


def dump_pins(doc: Mapping[str, Any]) -> str:
    """JSON with one project per line, so imports diff readably."""
    sources = json.dumps(doc["sources"], indent=2, ensure_ascii=False)
    projects: Mapping[str, Any] = doc["projects"]
    if not projects:
        return '{\n  "sources": ' + sources.replace("\n", "\n  ") + ',\n  "projects": {}\n}\n'
    lines = [
        f"{json.dumps(name)}: {json.dumps(entry, separators=(', ', ': '))}"
        for name, entry in projects.items()
    ]
    return (
        '{\n  "sources": '
        + sources.replace("\n", "\n  ")
        + ',\n  "projects": {\n    '
        + ",\n    ".join(lines)
        + "\n  }\n}\n"
    )
