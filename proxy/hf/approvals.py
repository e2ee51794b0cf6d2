"""What the admin approved, read from the policy data ``policies/data/hf.json``.

Only used to *propose* the commit a branch or tag resolves to in ``"unpinned":
"resolve-approved"`` mode: the policy (hf.rego) reads the same data and independently checks
that the proposed commit is the approved one, so a stale read here can only cause a denial,
never an allow.  Re-read whenever the engine's policy revision changes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..policy.engine import PolicyEngine
from .model import is_commit

UNPINNED_MODES = ("deny", "resolve-approved", "allow")


@dataclass(frozen=True, slots=True)
class HfPolicyData:
    unpinned: str = "deny"
    approved: dict[str, Any] = field(default_factory=dict)
    monitor_rules: frozenset[str] = frozenset()  # decided and logged, not enforced

    def approved_commit(self, repo_key: str, revision: str) -> str | None:
        """``approved[key]`` is a commit for every revision, or {revision|"*": commit}."""
        entry = self.approved.get(repo_key)
        if isinstance(entry, dict):
            entry = entry.get(revision, entry.get("*"))
        return entry if isinstance(entry, str) and is_commit(entry) else None


def parse_data(raw: Any) -> HfPolicyData:
    if not isinstance(raw, dict):
        return HfPolicyData()
    mode = raw.get("unpinned", "deny")
    approved = raw.get("approved", {})
    monitor = raw.get("monitor_rules", [])
    return HfPolicyData(
        unpinned=mode if mode in UNPINNED_MODES else "deny",
        approved=approved if isinstance(approved, dict) else {},
        monitor_rules=frozenset(r for r in monitor if isinstance(r, str))
        if isinstance(monitor, list)
        else frozenset(),
    )


def read_data(path: Path) -> HfPolicyData:
    try:
        return parse_data(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return HfPolicyData()  # fail closed: "deny" mode proposes nothing


class PolicyData:
    def __init__(self, policy_root: Path, engine: PolicyEngine) -> None:
        self._path = policy_root / "data" / "hf.json"
        self._engine = engine
        self._revision: str | None = None
        self._data = HfPolicyData()
        self._lock = asyncio.Lock()

    async def current(self) -> HfPolicyData:
        if self._revision == self._engine.revision:
            return self._data
        async with self._lock:
            revision = self._engine.revision
            if self._revision != revision:
                self._data = await asyncio.to_thread(read_data, self._path)
                self._revision = revision
        return self._data
