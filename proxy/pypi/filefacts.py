"""Pure facts about distribution files: version and kind from the file name, upload time in ns."""

from __future__ import annotations

import functools
from datetime import datetime

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ..decision import FileFacts
from .model import File


@functools.lru_cache(maxsize=262144)
def parse_filename(filename: str) -> tuple[str | None, str]:
    """(version, kind) from a distribution file name; memoised (pages repeat on every view)."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1]), "wheel"
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1]), "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        pass
    return None, "other"


@functools.lru_cache(maxsize=262144)
def upload_ns(upload_time: str) -> int | None:
    try:
        return int(datetime.fromisoformat(upload_time).timestamp() * 1e9)
    except ValueError:
        return None


def file_facts(f: File) -> FileFacts:
    version, kind = parse_filename(f.filename)
    return FileFacts(
        filename=f.filename,
        version=version,
        kind=kind,
        hashes=dict(f.hashes),
        size=f.size,
        upload_time_ns=upload_ns(f.upload_time) if f.upload_time else None,
        yanked=f.is_yanked,
        requires_python=f.requires_python,
    )
