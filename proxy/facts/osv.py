"""Known-malicious and vulnerable PyPI releases (OSV), as facts for the policy.

The list is compiled by ``airlock osv import`` (:mod:`proxy.facts.osv_import`) from local OSV
records and shipped as ``policies/lists/osv.json``::

    {"source": "...", "imported": "YYYY-MM-DD",
     "records": {"<canonical-name>": [
        {"id": "MAL-2024-1", "kind": "malicious" | "vulnerability",
         "severity": "CRITICAL" | "HIGH" | "MODERATE" | "LOW" | "UNKNOWN" | null,
         "summary": "...", "aliases": ["CVE-..."], "versions": ["1.0", ...],
         "ranges": [{"introduced": "0", "fixed": "1.2" | null, "last_affected": null}]}]}}

``severity`` is null for malicious records (the kind says it all).  A range holds one
``introduced`` bound (inclusive, ``"0"`` = from the first release) and at most one upper bound:
``fixed`` (exclusive) or ``last_affected`` (inclusive); neither = every later version.

:class:`OsvIndex` answers "which records affect this name and version?" with a dict lookup by
canonical name and a few range comparisons with :mod:`packaging.version` (PEP 440 ordering).
A version that does not parse matches only through a record's explicit ``versions`` list, except
that a malicious record covering every version (``introduced: "0"``, no end) or carrying a bound
that does not parse matches it anyway: unknown versions of malware fail closed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from .listfile import load_document

KINDS = ("malicious", "vulnerability")
SEVERITIES = ("CRITICAL", "HIGH", "MODERATE", "LOW", "UNKNOWN")


class OsvError(ValueError):
    """An OSV list file is malformed or unreadable."""


@dataclass(frozen=True, slots=True)
class OsvMatch:
    id: str  # e.g. MAL-2024-1234, GHSA-xxxx-xxxx-xxxx, PYSEC-2023-1
    kind: str  # "malicious" or "vulnerability"
    severity: str | None  # one of SEVERITIES; None for malicious records
    summary: str
    aliases: tuple[str, ...] = ()  # CVE / GHSA ids of the same issue
    all_versions: bool = False  # the record affects every version of the project

    def to_input(self) -> dict[str, Any]:
        """The shape the policy input expects."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "aliases": list(self.aliases),
            "all_versions": self.all_versions,
        }


@dataclass(frozen=True, slots=True)
class _Interval:
    start: Version | None  # inclusive; None = from the first release
    fixed: Version | None  # exclusive
    last_affected: Version | None  # inclusive

    def contains(self, v: Version) -> bool:
        if self.start is not None and v < self.start:
            return False
        if self.fixed is not None and v >= self.fixed:
            return False
        return self.last_affected is None or v <= self.last_affected


@dataclass(frozen=True, slots=True)
class _Entry:
    match: OsvMatch
    listed: frozenset[str]  # explicit versions, as written and PEP 440-normalised
    intervals: tuple[_Interval, ...]
    unparseable_bound: bool  # some range bound is not a PEP 440 version

    def affects(self, version: str, normalized: str) -> bool:
        """``normalized`` is ``canonicalize_version(version)``, computed once per lookup."""
        if version in self.listed or normalized in self.listed:
            return True
        malicious = self.match.kind == "malicious"
        if malicious and (self.match.all_versions or self.unparseable_bound):
            return True  # fail closed for malware
        try:
            v = Version(version)
        except InvalidVersion:
            return False
        return any(interval.contains(v) for interval in self.intervals)


class OsvIndex:
    """Lookup of OSV records by canonical project name; build with :meth:`load`.

    Loading validates every record's shape; the version ranges of a project are compiled on
    its first lookup, so start-up stays fast with tens of thousands of records.
    """

    __slots__ = ("_compiled", "_raw", "imported", "source")

    def __init__(
        self, raw: Mapping[str, list[dict[str, Any]]], *, source: str, imported: dt.date
    ) -> None:
        self._raw = dict(raw)
        self._compiled: dict[str, tuple[_Entry, ...]] = {}
        self.source = source
        self.imported = imported

    @classmethod
    def load(cls, path: Path) -> OsvIndex:
        return load_document(path, cls.from_document, OsvError, "OSV list")

    @classmethod
    def from_document(cls, doc: Any) -> OsvIndex:
        """Validate a parsed ``osv.json`` document."""
        if not isinstance(doc, dict):
            raise OsvError("top level must be an object")
        source, imported, records = doc.get("source"), doc.get("imported"), doc.get("records")
        if not isinstance(source, str):
            raise OsvError("'source' must be a string")
        if not isinstance(imported, str):
            raise OsvError("'imported' must be a YYYY-MM-DD string")
        try:
            day = dt.date.fromisoformat(imported)
        except ValueError as e:
            raise OsvError(f"'imported' is not a date: {imported!r}") from e
        if not isinstance(records, dict):
            raise OsvError("'records' must be an object keyed by project name")
        by_name: dict[str, list[dict[str, Any]]] = {}
        for name, entries in records.items():
            if not isinstance(entries, list):
                raise OsvError(f"records[{name!r}] must be a list")
            bucket = by_name.setdefault(canonicalize_name(name), [])
            for i, raw in enumerate(entries):
                try:
                    bucket.append(_check(raw))
                except OsvError as e:
                    raise OsvError(f"records[{name!r}][{i}]: {e}") from e
        return cls(by_name, source=source, imported=day)

    @property
    def project_count(self) -> int:
        return len(self._raw)

    @property
    def record_count(self) -> int:
        return sum(len(entries) for entries in self._raw.values())

    def matches(self, name: str, version: str | None) -> list[OsvMatch]:
        """Records affecting ``name`` at ``version``; every record of the project if None."""
        key = canonicalize_name(name)
        entries = self._compiled.get(key)
        if entries is None:
            raw = self._raw.get(key)
            if not raw:
                return []
            entries = self._compiled[key] = tuple(_build(r) for r in raw)
        if version is None:
            return [entry.match for entry in entries]
        normalized = canonicalize_version(version)
        return [entry.match for entry in entries if entry.affects(version, normalized)]


def _check(raw: Any) -> dict[str, Any]:
    """``raw`` if it has the shape of an ``osv.json`` record, else :class:`OsvError`."""
    if not isinstance(raw, dict):
        raise OsvError("record must be an object")
    rid, kind, severity = raw.get("id"), raw.get("kind"), raw.get("severity")
    if not isinstance(rid, str) or not rid:
        raise OsvError("'id' must be a non-empty string")
    if kind not in KINDS:
        raise OsvError(f"'kind' must be one of {KINDS}, got {kind!r}")
    if severity is not None and severity not in SEVERITIES:
        raise OsvError(f"'severity' must be null or one of {SEVERITIES}, got {severity!r}")
    if not isinstance(raw.get("summary", ""), str):
        raise OsvError("'summary' must be a string")
    _strings(raw.get("aliases", []), "aliases")
    _strings(raw.get("versions", []), "versions")
    ranges = raw.get("ranges", [])
    if not isinstance(ranges, list):
        raise OsvError("'ranges' must be a list")
    for r in ranges:
        _range_bounds(r)
    return raw


def _build(raw: dict[str, Any]) -> _Entry:
    """Compile a record that passed :func:`_check`."""
    intervals: list[_Interval] = []
    unparseable = everything = False
    for r in raw.get("ranges", []):
        introduced, fixed, last = _range_bounds(r)
        if introduced == "0" and fixed is None and last is None:
            everything = True
        try:
            intervals.append(
                _Interval(
                    start=None if introduced == "0" else Version(introduced),
                    fixed=None if fixed is None else Version(fixed),
                    last_affected=None if last is None else Version(last),
                )
            )
        except InvalidVersion:
            unparseable = True
    versions: list[str] = raw.get("versions", [])
    listed = frozenset(versions) | {canonicalize_version(v) for v in versions}
    match = OsvMatch(
        id=raw["id"],
        kind=raw["kind"],
        severity=raw.get("severity"),
        summary=raw.get("summary", ""),
        aliases=tuple(raw.get("aliases", [])),
        all_versions=everything,
    )
    return _Entry(match, listed, tuple(intervals), unparseable)


def _strings(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OsvError(f"'{field}' must be a list of strings")
    return value


def _range_bounds(r: Any) -> tuple[str, str | None, str | None]:
    if not isinstance(r, dict):
        raise OsvError("a range must be an object")
    introduced, fixed, last = r.get("introduced", "0"), r.get("fixed"), r.get("last_affected")
    if not isinstance(introduced, str) or not introduced:
        raise OsvError("range 'introduced' must be a non-empty string")
    for bound in (fixed, last):
        if bound is not None and (not isinstance(bound, str) or not bound):
            raise OsvError("range 'fixed'/'last_affected' must be null or a non-empty string")
    if fixed is not None and last is not None:
        raise OsvError("a range has either 'fixed' or 'last_affected', not both")
    return introduced, fixed, last


def osv_document(
    records: Mapping[str, Iterable[Mapping[str, Any]]], *, source: str, imported: dt.date
) -> dict[str, Any]:
    """The ``osv.json`` document: names sorted, each project's records in the order given."""
    return {
        "source": source,
        "imported": imported.isoformat(),
        "records": {name: [dict(r) for r in records[name]] for name in sorted(records)},
    }


def dump_osv(doc: Mapping[str, Any]) -> str:
    """JSON with one project (all its records) per line, so re-imports diff readably."""
    head = {k: v for k, v in doc.items() if k != "records"}
    body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]  # drop the closing "\n}"
    records: Mapping[str, Any] = doc["records"]
    if not records:
        return body + ',\n  "records": {}\n}\n'
    lines = [
        f"{json.dumps(name, ensure_ascii=False)}: "
        f"{json.dumps(entries, ensure_ascii=False, separators=(', ', ': '))}"
        for name, entries in records.items()
    ]
    return body + ',\n  "records": {\n    ' + ",\n    ".join(lines) + "\n  }\n}\n"
