"""Public result types of the model-artifact scanner and the per-scan context.

The context carries the limits, the allow-list, the findings found so far and the budgets that
keep a scan bounded (entries, unpacked bytes, nesting depth).  Format scanners only ever talk
to the context; they never raise for a bad file, they report a finding and return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .allowlist import Allowlist

SCANNER_VERSION = "2"
"""Bump whenever a change could alter the findings for some file (cached verdicts expire)."""

MAX_FINDINGS = 200
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    """Stable id, e.g. ``pickle-import``, ``container-bomb``, ``safetensors-header``."""
    message: str
    """One human sentence."""
    location: str
    """Path inside containers (nested archives joined with ``!/``); ``""`` for the top level."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    format: str
    findings: tuple[Finding, ...]
    scanner_version: str
    bytes_scanned: int
    """Bytes actually read from the file (headers and pickles; raw tensor data is skipped)."""

    @property
    def clean(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class Limits:
    max_total_bytes: int = 64 * GIB
    """Uncompressed bytes declared or produced by all container members together."""
    max_entries: int = 100_000
    """Members of all containers together."""
    max_depth: int = 5
    """Nesting of containers (a member of a top-level zip is at depth 1)."""
    max_ratio: float = 200.0
    """Uncompressed/compressed size of one member (checked for members of 1 MiB and more)."""


RATIO_FLOOR = 1 << 20
"""Members smaller than this are not ratio-checked (tiny files compress absurdly well)."""


class Abort(Exception):
    """A bound was exceeded; the finding is already recorded, the whole scan stops."""


@dataclass(slots=True)
class Context:
    limits: Limits
    allow: Allowlist
    findings: list[Finding] = field(default_factory=list)
    entries: int = 0
    unpacked: int = 0
    top_format: str = "unknown"
    """What the file itself was sniffed as (reported if a bound aborts the scan)."""
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, rule: str, message: str, location: str) -> None:
        key = (rule, message, location)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(rule, message, location))
        elif len(self.findings) == MAX_FINDINGS:
            self.findings.append(Finding("scan-limit", "more findings were suppressed", location))

    def count_entries(self, n: int, location: str) -> None:
        self.entries += n
        if self.entries > self.limits.max_entries:
            self.add(
                "container-bomb",
                f"archives hold more than {self.limits.max_entries} entries in total",
                location,
            )
            raise Abort

    def count_unpacked(self, n: int, location: str) -> None:
        self.unpacked += n
        if self.unpacked > self.limits.max_total_bytes:
            self.add(
                "container-bomb",
                f"archives unpack to more than {self.limits.max_total_bytes} bytes in total",
                location,
            )
            raise Abort

    def check_ratio(self, unpacked: int, packed: int, location: str) -> None:
        if unpacked >= RATIO_FLOOR and unpacked > self.limits.max_ratio * max(packed, 1):
            self.add(
                "container-bomb",
                f"member expands {unpacked / max(packed, 1):.0f}x "
                f"(limit {self.limits.max_ratio:.0f}x)",
                location,
            )
            raise Abort

    def check_depth(self, depth: int, location: str) -> bool:
        if depth > self.limits.max_depth:
            self.add(
                "container-bomb",
                f"archives nest deeper than {self.limits.max_depth} levels",
                location,
            )
            return False
        return True


def join(location: str, name: str) -> str:
    """Location of member ``name`` of the archive at ``location`` (nesting shown as ``!/``)."""
    return f"{location}!/{name}" if location else name
