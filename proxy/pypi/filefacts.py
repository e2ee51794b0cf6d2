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
from packaging.version import InvalidVersion, Version

from ..decision import FileFacts
from .model import File


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> str | None:
    """Normalised version; memoised (the files of one release share it)."""
    try:
        return str(Version(text))
    except InvalidVersion:
        return None


@functools.lru_cache(maxsize=16384)
def _wheel_shape(shape: str) -> bool:
    """Whether a wheel name is valid apart from its version: ``shape`` is the name with the
    version replaced by ``0``, so pages repeat it across releases (memoised)."""
    try:
        parse_wheel_filename(shape)
    except InvalidWheelFilename:
        return False
    return True


def parse_filename(filename: str) -> tuple[str | None, str]:
    """(version, kind) from a distribution file name, exactly as packaging parses it.

    A page of thousands of files repeats few versions and few name/tag shapes, so the version
    and the rest of the name are checked separately, each memoised.
    """
    if filename.endswith(".whl"):
        parts = filename.split("-", 2)
        if len(parts) == 3:
            version = _version(parts[1])
            if version is not None and _wheel_shape(f"{parts[0]}-0-{parts[2]}"):
                return version, "wheel"
        return None, "other"
    if filename.endswith((".tar.gz", ".zip")):
        try:
            return str(parse_sdist_filename(filename)[1]), "sdist"
        except InvalidSdistFilename:
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
        hashes=f.hashes,  # shared, never mutated: pages are immutable once parsed
        size=f.size,
        upload_time_ns=upload_ns(f.upload_time) if f.upload_time else None,
        yanked=f.is_yanked,
        requires_python=f.requires_python,
    )
