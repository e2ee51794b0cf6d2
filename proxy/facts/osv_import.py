"""Read OSV records from a local directory tree (or a .zip export) into ``osv.json`` entries.

Accepted inputs, all offline:

* the OpenSSF malicious-packages layout ``osv/malicious/pypi/<name>/MAL-YYYY-NNNN.json``
  (records under ``osv/withdrawn/`` are skipped, as the dataset's consumer guide asks);
* any tree of OSV JSON files, e.g. an OSV vulnerability export (``<ID>.json``) or the
  per-ecosystem ``all.zip`` of such an export.

Only ``affected[]`` entries whose ``package.ecosystem`` is PyPI are kept; names are canonicalised
(PEP 503).  Records with ``withdrawn`` set are skipped.  A record is *malicious* when its id starts
with ``MAL-``, it lies under a ``malicious`` folder, it carries the OpenSSF
``database_specific.malicious-packages-origins`` field, or its summary reads "Malicious code in
...".  Every other record is a *vulnerability* whose severity is, in order: the record's
``database_specific.severity`` (GitHub advisories: LOW/MODERATE/HIGH/CRITICAL), the band of the
highest CVSS v3.x base score in ``severity[]`` (:mod:`proxy.facts.osv_cvss`), else UNKNOWN.

Ranges of type ECOSYSTEM and SEMVER are flattened into ``{introduced, fixed, last_affected}``
intervals after sorting their events by PEP 440 version, which is how the OSV schema evaluates
them; GIT ranges are ignored.  A malicious record without any usable version information is
taken to affect every version (fail closed); a vulnerability without one cannot match anything
and is skipped (counted).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from .osv_cvss import severity_of_vector

_MALICIOUS_SUMMARY = re.compile(r"^\s*malicious (code|package)s? in\b", re.IGNORECASE)
_EVENT_KINDS = ("introduced", "fixed", "last_affected")
_LABELS = {
    "LOW": "LOW",
    "MODERATE": "MODERATE",
    "MEDIUM": "MODERATE",
    "HIGH": "HIGH",
    "CRITICAL": "CRITICAL",
}
_RANK = {"LOW": 1, "MODERATE": 2, "HIGH": 3, "CRITICAL": 4}
SUMMARY_LIMIT = 300


@dataclass(slots=True)
class ImportStats:
    files: int = 0
    malicious: int = 0  # (record, project) pairs kept
    vulnerabilities: int = 0
    withdrawn: int = 0  # records skipped
    other_ecosystem: int = 0  # records without any PyPI package
    no_version_info: int = 0  # vulnerability entries that could never match
    duplicates: int = 0  # same id for the same project seen again
    invalid: list[str] = field(default_factory=list)  # "path: reason"


@dataclass(slots=True)
class OsvImport:
    records: dict[str, list[dict[str, Any]]]  # canonical name → entries (osv.json shape)
    stats: ImportStats


def import_tree(root: Path, on_file: Callable[[], object] = lambda: None) -> OsvImport:
    """Read every ``*.json`` OSV record under ``root`` (a directory or a .zip file); call
    *on_file* before each file (the CLI's progress line)."""
    stats = ImportStats()
    found: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}  # name → id → (modified, e)
    for parts, data in _sources(root):
        on_file()
        stats.files += 1
        where = "/".join(parts)
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            stats.invalid.append(f"{where}: not JSON: {e}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
            stats.invalid.append(f"{where}: not an OSV record (no 'id')")
            continue
        lowered = {p.lower() for p in parts}
        if doc.get("withdrawn") or "withdrawn" in lowered:
            stats.withdrawn += 1
            continue
        entries = convert_record(doc, under_malicious="malicious" in lowered)
        if entries is None:
            stats.other_ecosystem += 1
            continue
        modified = doc.get("modified") if isinstance(doc.get("modified"), str) else ""
        for name, entry in entries:
            if entry["kind"] == "vulnerability" and not entry["versions"] and not entry["ranges"]:
                stats.no_version_info += 1
                continue
            seen = found.setdefault(name, {})
            previous = seen.get(entry["id"])
            if previous is not None:
                stats.duplicates += 1
                if previous[0] > str(modified):
                    continue
            seen[entry["id"]] = (str(modified), entry)
    records: dict[str, list[dict[str, Any]]] = {}
    for name, by_id in found.items():
        kept = [entry for _, entry in by_id.values()]
        kept.sort(key=lambda e: (e["kind"] != "malicious", e["id"]))
        records[name] = kept
        for entry in kept:
            if entry["kind"] == "malicious":
                stats.malicious += 1
            else:
                stats.vulnerabilities += 1
    return OsvImport(records, stats)


def _sources(root: Path) -> Iterator[tuple[tuple[str, ...], bytes]]:
    """``(path parts, bytes)`` of each JSON file; parts include the root's own path."""
    base = root.resolve().parts
    if root.is_file() and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and info.filename.endswith(".json"):
                    yield base + PurePosixPath(info.filename).parts, zf.read(info)
        return
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory or a .zip file")
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") for p in rel) or not path.is_file():
            continue  # .git and other hidden folders
        yield base + rel, path.read_bytes()


@dataclass(slots=True)
class _Affected:
    versions: list[str] = field(default_factory=list)
    ranges: list[dict[str, str | None]] = field(default_factory=list)
    has_info: bool = False  # some version or ECOSYSTEM/SEMVER range was given


def convert_record(
    doc: Mapping[str, Any], *, under_malicious: bool = False
) -> list[tuple[str, dict[str, Any]]] | None:
    """The ``(canonical name, entry)`` pairs of one OSV record; None if it has no PyPI package."""
    per_name: dict[str, _Affected] = {}
    for affected in _dicts(doc.get("affected")):
        package = affected.get("package")
        if not isinstance(package, dict) or not _is_pypi(package.get("ecosystem")):
            continue
        raw_name = package.get("name")
        if not isinstance(raw_name, str) or not raw_name.strip():
            continue
        acc = per_name.setdefault(canonicalize_name(raw_name), _Affected())
        listed = [v for v in affected.get("versions") or [] if isinstance(v, str) and v]
        acc.versions.extend(listed)
        acc.has_info = acc.has_info or bool(listed)
        for r in _dicts(affected.get("ranges")):
            if r.get("type") in ("ECOSYSTEM", "SEMVER"):
                flat = events_to_ranges(list(_dicts(r.get("events"))))
                acc.ranges.extend(flat)
                acc.has_info = acc.has_info or bool(flat)
    if not per_name:
        return None
    rid = str(doc["id"])
    malicious = is_malicious(doc, under_malicious=under_malicious)
    severity = None if malicious else severity_of(doc)
    aliases = sorted({a for a in doc.get("aliases") or [] if isinstance(a, str) and a})
    out = []
    for name, acc in per_name.items():
        ranges = acc.ranges
        if malicious and not acc.has_info:
            ranges = [{"introduced": "0", "fixed": None, "last_affected": None}]
        entry: dict[str, Any] = {
            "id": rid,
            "kind": "malicious" if malicious else "vulnerability",
            "severity": severity,
            "summary": summary_of(doc),
            "aliases": aliases,
            "versions": _unique_versions(acc.versions),
            "ranges": _unique(ranges),
        }
        out.append((name, entry))
    return out


def _is_pypi(ecosystem: Any) -> bool:
    return isinstance(ecosystem, str) and ecosystem.split(":", 1)[0].strip().lower() == "pypi"


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def is_malicious(doc: Mapping[str, Any], *, under_malicious: bool = False) -> bool:
    if under_malicious or str(doc.get("id", "")).upper().startswith("MAL-"):
        return True
    specific = doc.get("database_specific")
    if isinstance(specific, dict) and "malicious-packages-origins" in specific:
        return True
    summary = doc.get("summary")
    return isinstance(summary, str) and bool(_MALICIOUS_SUMMARY.match(summary))


def severity_of(doc: Mapping[str, Any]) -> str:
    """Severity label of a vulnerability record (see the module docstring for the order)."""
    specific = doc.get("database_specific")
    if isinstance(specific, dict):
        label = specific.get("severity")
        if isinstance(label, str) and label.strip().upper() in _LABELS:
            return _LABELS[label.strip().upper()]
    best: str | None = None
    severities = list(_dicts(doc.get("severity")))
    for affected in _dicts(doc.get("affected")):
        severities.extend(_dicts(affected.get("severity")))
    for item in severities:
        score = item.get("score")
        if item.get("type") == "CVSS_V3" and isinstance(score, str):
            label = severity_of_vector(score)
            if label is not None and (best is None or _RANK[label] > _RANK[best]):
                best = label
    return best or "UNKNOWN"


def summary_of(doc: Mapping[str, Any]) -> str:
    text = doc.get("summary")
    if not isinstance(text, str) or not text.strip():
        details = doc.get("details")
        lines = details.strip().splitlines() if isinstance(details, str) else []
        text = lines[0] if lines else ""
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def events_to_ranges(events: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    """Flatten OSV events into ``{introduced, fixed, last_affected}`` intervals.

    Events are sorted by version (``"0"`` first; stable, so ties keep their order) when every
    version parses; otherwise they are taken in the order written.  ``limit`` events (for GIT
    ranges) are ignored.  An upper bound with no open interval before it is ignored, as in the
    OSV evaluation algorithm; an interval left open extends to every later version.
    """
    flat: list[tuple[str, str]] = []
    for event in events:
        for kind in _EVENT_KINDS:
            value = event.get(kind)
            if isinstance(value, str) and value:
                flat.append((kind, value))
    try:
        keys = [(0, Version("0")) if value == "0" else (1, Version(value)) for _, value in flat]
    except InvalidVersion:
        pass  # keep the written order
    else:
        order = sorted(range(len(flat)), key=keys.__getitem__)
        flat = [flat[i] for i in order]
    out: list[dict[str, str | None]] = []
    start: str | None = None
    for kind, value in flat:
        if kind == "introduced":
            if start is None:
                start = value
        elif start is not None:
            out.append(
                {
                    "introduced": start,
                    "fixed": value if kind == "fixed" else None,
                    "last_affected": value if kind == "last_affected" else None,
                }
            )
            start = None
    if start is not None:
        out.append({"introduced": start, "fixed": None, "last_affected": None})
    return out


def _unique_versions(versions: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for v in versions:
        key = canonicalize_version(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _unique(ranges: list[dict[str, str | None]]) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for r in ranges:
        if r not in out:
            out.append(r)
    return out
