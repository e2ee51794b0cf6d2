"""Subject (what is asked for) and Decision (the verdict, with reasons), shared by every layer.

One Decision flows from the policy engine to the response (a filtered page or a 403) and to
the log (one ``decision`` event per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Ecosystem = Literal["pypi", "hf"]
Action = Literal["page", "file", "metadata", "egress"]  # egress: a refused connection


@dataclass(frozen=True, slots=True)
class FileFacts:
    """One file as the policy sees it."""

    filename: str
    version: str | None = None  # parsed from the filename (packaging); None if unparseable
    kind: str = "other"  # "wheel" | "sdist" | "other"
    hashes: dict[str, str] = field(default_factory=dict)  # policies see the algorithm names
    size: int | None = None
    upload_time_ns: int | None = None  # PEP 700, as integer ns (no RFC 3339 parsing in Rego)
    yanked: bool = False
    requires_python: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # per-file facts (osv, pin, provenance)

    def to_input(self) -> dict[str, Any]:
        # The input's size is most of the embedded engine's cost (a page may list thousands of
        # files), so two optional facts are left out when they say nothing: ``yanked`` (absent
        # = false) and ``requires_python`` (absent = none).  ``upload_time_ns`` stays explicit
        # (null = unknown), because a missing age must be able to deny.
        doc = self.extra | {
            "filename": self.filename,
            "version": self.version,
            "kind": self.kind,
            "hashes": sorted(self.hashes),  # algorithm names: values stay in Python
            "size": self.size,
            "upload_time_ns": self.upload_time_ns,
        }
        if self.yanked:
            doc["yanked"] = True
        if self.requires_python is not None:
            doc["requires_python"] = self.requires_python
        return doc


@dataclass(frozen=True, slots=True)
class Client:
    """Who asks.  Anonymous until the identity feature assigns ids and groups."""

    id: str = "anonymous"
    groups: tuple[str, ...] = ()
    address: str = ""
    scopes: tuple[str, ...] = ()  # "admin"

    @property
    def anonymous(self) -> bool:
        return self.id == "anonymous"


@dataclass(frozen=True, slots=True)
class Subject:
    """What is asked for, in one ecosystem, by one client."""

    ecosystem: Ecosystem
    action: Action
    project: str  # canonical project name or hub repo id
    upstream: str  # upstream name from settings
    client: Client = field(default_factory=Client)
    files: tuple[FileFacts, ...] = ()  # the page's files, or the one file asked for
    extra: dict[str, Any] = field(default_factory=dict)  # ecosystem-specific facts

    @property
    def target(self) -> str:
        if self.action == "page" or not self.files:
            return self.project
        return f"{self.project}/{self.files[0].filename}"


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str  # stable rule id, e.g. "deny-list"
    message: str  # one human sentence

    def __str__(self) -> str:
        return f"{self.message} [{self.rule}]"


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on a Subject.

    ``allow`` covers the whole subject (a project page or one file); ``file_denials`` names the
    files of a page that must not be served.  ``enforced`` is False in monitor mode: the reasons
    are recorded but nothing is blocked.
    """

    allow: bool
    reasons: tuple[Reason, ...] = ()
    file_denials: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    revision: str = ""
    engine: str = ""
    enforced: bool = True
    error: str | None = None  # set when evaluation failed (and so the decision is a deny)
    warnings: tuple[Reason, ...] = ()  # logged, never blocking
    monitored: tuple[Reason, ...] = ()  # reasons of rules in monitor mode: logged, not enforced

    @property
    def blocks(self) -> bool:
        return self.enforced and not self.allow

    def blocks_file(self, filename: str) -> bool:
        return self.enforced and (not self.allow or filename in self.file_denials)

    def file_reasons(self, filename: str) -> tuple[Reason, ...]:
        return self.reasons + self.file_denials.get(filename, ())

    def to_json(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "reasons": _pairs(self.reasons),
            "file_denials": {k: _pairs(v) for k, v in self.file_denials.items()},
            "revision": self.revision,
            "engine": self.engine,
            "enforced": self.enforced,
            "warnings": _pairs(self.warnings),
            "monitored": _pairs(self.monitored),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Decision:
        return cls(
            allow=bool(d["allow"]),
            reasons=_reasons(d["reasons"]),
            file_denials={k: _reasons(v) for k, v in d["file_denials"].items()},
            revision=str(d["revision"]),
            engine=str(d["engine"]),
            enforced=bool(d["enforced"]),
            warnings=_reasons(d["warnings"]),
            monitored=_reasons(d["monitored"]),
        )

    def summary(self, filename: str | None = None) -> str:
        reasons = self.file_reasons(filename) if filename else self.reasons
        return "; ".join(str(r) for r in reasons) or "denied by policy"


def _pairs(reasons: tuple[Reason, ...]) -> list[list[str]]:
    return [[r.rule, r.message] for r in reasons]


def _reasons(pairs: list[list[str]]) -> tuple[Reason, ...]:
    return tuple(Reason(str(rule), str(message)) for rule, message in pairs)
