"""The facts' data files (corpus, OSV list, pins): read and validated with the file named in every
error, written so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def load_document(path: Path, parse: Callable[[Any], T], error: type[ValueError], what: str) -> T:
    """Read *path* as JSON and *parse* it; unreadable or invalid, raise *error* naming *path*."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: cannot read {what}: {e}") from e
    try:
        return parse(doc)
    except error as e:
        raise error(f"{path}: {e}") from e


def write_atomic(out: Path, text: str) -> None:
    """Write next to the target and rename over it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these lists are public data
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
