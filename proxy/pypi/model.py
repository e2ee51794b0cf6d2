"""Neutral model of simple-API pages, shared by the parsers, the renderers and the layers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class File:
    filename: str  # PEP 691: files[].filename (from the URL path in HTML)
    url: str  # absolute upstream URL while inside the proxy
    hashes: dict[str, str] = field(default_factory=dict)  # PEP 503 fragment / PEP 691 hashes
    requires_python: str | None = None  # PEP 503 data-requires-python / PEP 691 requires-python
    yanked: bool | str = False  # PEP 592: False, True, or the reason
    core_metadata: bool | dict[str, str] = False  # PEP 658/714: absent, true, or its hashes
    gpg_sig: bool | None = None  # PEP 503 data-gpg-sig / PEP 691 gpg-sig
    size: int | None = None  # PEP 700 files[].size
    upload_time: str | None = None  # PEP 700 files[].upload-time (ISO 8601, UTC)
    provenance: str | None = None  # PEP 740 provenance URL

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not False


@dataclass(frozen=True, slots=True)
class ProjectDetail:
    name: str  # PEP 691: name (canonical)
    files: tuple[File, ...] = ()
    versions: tuple[str, ...] | None = None  # PEP 700 versions
    tracks: tuple[str, ...] = ()  # PEP 708 tracks
    alternate_locations: tuple[str, ...] = ()  # PEP 708 alternate-locations
    last_serial: int | None = None  # PEP 691 meta._last-serial (informational)
    _by_name: dict[str, File] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.filename: f for f in self.files})

    def file(self, filename: str) -> File | None:
        return self._by_name.get(filename)


@dataclass(frozen=True, slots=True)
class ProjectList:
    names: tuple[str, ...]  # PEP 691: projects[].name
