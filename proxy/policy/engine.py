"""PolicyEngine interface, and the one place a raw policy result becomes a Decision.

Contract of every entrypoint ``data.airlock.<ecosystem>.decision``::

    {"allow": bool,
     "deny": [{"rule": str, "message": str}, ...],                     # whole subject
     "file_deny": [{"filename": str, "rule": str, "message": str}, ...]}  # files of a page

Anything else (undefined, an error, a non-boolean ``allow``, a malformed reason, a timeout, an
engine crash) is a deny with a ``policy-error`` reason.  Never an allow.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any, Protocol

from ..decision import Decision, Reason, Subject

POLICY_ERROR = "policy-error"


class PolicyEngine(Protocol):
    """Evaluates subjects against the active policy snapshot."""

    @property
    def revision(self) -> str:
        """sha256 of the active snapshot."""

    @property
    def name(self) -> str:
        """Engine name recorded in decisions, e.g. "regopy"."""

    @property
    def page_chunk(self) -> int:
        """Files per evaluation when a page is decided in parts (see batch.decide_chunked)."""

    async def decide(self, subject: Subject) -> Decision:
        """Decide; never raises (errors become deny decisions)."""

    async def close(self) -> None: ...


def failed(message: str, revision: str, engine: str) -> Decision:
    return Decision(
        allow=False,
        reasons=(Reason(POLICY_ERROR, f"policy evaluation failed: {message}"),),
        revision=revision,
        engine=engine,
        error=message,
    )


def entrypoint(subject: Subject) -> str:
    """The subject's entrypoint, as the engines name it: ``airlock/<ecosystem>/decision``."""
    return f"airlock/{subject.ecosystem}/decision"


def missing_entrypoint(
    subject: Subject, entrypoints: Collection[str], revision: str, engine: str
) -> Decision | None:
    """The deny for a subject whose ecosystem no loaded module decides; None when one does."""
    if entrypoint(subject) in entrypoints:
        return None
    return failed(f"no policy defines data.airlock.{subject.ecosystem}.decision", revision, engine)


def _reason(item: Any) -> Reason:
    if not isinstance(item, dict):
        raise ValueError(f"reason is not an object: {item!r:.80}")
    rule, message = item.get("rule"), item.get("message")
    if not isinstance(rule, str) or not isinstance(message, str) or not rule:
        raise ValueError(f"reason needs string 'rule' and 'message': {item!r:.80}")
    return Reason(rule, message)


def parse_result(result: Any, revision: str, engine: str) -> Decision:
    """Turn an entrypoint's value into a Decision, failing closed on any malformation."""
    try:
        if not isinstance(result, dict):
            raise ValueError("decision is undefined or not an object")
        allow = result.get("allow")
        if not isinstance(allow, bool):
            raise ValueError("decision.allow is not a boolean")
        deny = result.get("deny", [])
        file_deny = result.get("file_deny", [])
        if not isinstance(deny, list) or not isinstance(file_deny, list):
            raise ValueError("decision.deny and decision.file_deny must be sets")
        reasons = tuple(sorted({_reason(d) for d in deny}, key=str))
        files: dict[str, list[Reason]] = {}
        for item in file_deny:
            fname = item.get("filename") if isinstance(item, dict) else None
            if not isinstance(fname, str):
                raise ValueError(f"file_deny entry without a filename: {item!r:.80}")
            files.setdefault(fname, []).append(_reason(item))
        if allow and reasons:
            raise ValueError("decision allows while listing deny reasons")
        warn = result.get("warn", [])
        if not isinstance(warn, list):
            raise ValueError("decision.warn must be a set")
        warnings = tuple(sorted({_reason(w) for w in warn}, key=str))
    except ValueError as e:
        return failed(str(e), revision, engine)
    return Decision(
        allow=allow,
        reasons=reasons,
        file_denials={k: tuple(sorted(set(v), key=str)) for k, v in files.items()},
        revision=revision,
        engine=engine,
        warnings=warnings,
    )


def apply_monitor(decision: Decision, rules: frozenset[str]) -> Decision:
    """Move reasons of rules in monitor mode out of the verdict (they stay on record)."""
    if not rules or decision.error is not None:
        return decision
    kept = tuple(r for r in decision.reasons if r.rule not in rules)
    monitored = [r for r in decision.reasons if r.rule in rules]
    files: dict[str, tuple[Reason, ...]] = {}
    for name, reasons in decision.file_denials.items():
        monitored += [r for r in reasons if r.rule in rules]
        enforced = tuple(r for r in reasons if r.rule not in rules)
        if enforced:
            files[name] = enforced
    if not monitored:
        return decision
    return replace(
        decision,
        allow=not kept,
        reasons=kept,
        file_denials=files,
        monitored=tuple(sorted(set(monitored), key=str)),
    )
