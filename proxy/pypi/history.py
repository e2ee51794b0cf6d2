"""A project's history as its index page shows it, for the typo-squat rule.

A squat is nearly always new, with one or a few releases; a legitimate project whose name is
near a popular one is nearly always years old with a history of its own.  The page lists every
file with its PEP 700 upload time, so the history costs no extra request:

    {"first_upload_ns": int | None,  # earliest upload time (None: no file has one)
     "latest_upload_ns": int | None,
     "releases": int,                # distinct versions with at least one file
     "files": int,
     "unknown_upload_times": int,    # files without an upload time
     "provenance": bool}             # some file has PEP 740 provenance

Computed only for projects the name evidence already points at (the input stays small).
"""

from __future__ import annotations

from typing import Any

from .filefacts import parse_filename, upload_ns
from .model import ProjectDetail


def history_facts(detail: ProjectDetail) -> dict[str, Any]:
    times: list[int] = []
    versions: set[str] = set()
    unknown = 0
    provenance = False
    for f in detail.files:
        t = upload_ns(f.upload_time) if f.upload_time else None
        if t is None:
            unknown += 1
        else:
            times.append(t)
        version, _ = parse_filename(f.filename)
        versions.add(version if version is not None else f.filename)
        provenance = provenance or f.provenance is not None
    return {
        "first_upload_ns": min(times) if times else None,
        "latest_upload_ns": max(times) if times else None,
        "releases": len(versions),
        "files": len(detail.files),
        "unknown_upload_times": unknown,
        "provenance": provenance,
    }
