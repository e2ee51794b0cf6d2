"""Pure: a Subject becomes the Rego input document.  No I/O, no transport."""

from __future__ import annotations

from typing import Any

from ..decision import Subject


def build_input(subject: Subject, now_ns: int, upstream_kind: str = "public") -> dict[str, Any]:
    return {
        "ecosystem": subject.ecosystem,
        "action": subject.action,
        "project": subject.project,
        "upstream": {"name": subject.upstream, "kind": upstream_kind},
        "client": {
            "id": subject.client.id,
            "groups": list(subject.client.groups),
            "address": subject.client.address,
        },
        "files": [f.to_input() for f in subject.files],
        "facts": subject.extra,
        "now_ns": now_ns,
    }
