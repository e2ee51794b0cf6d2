"""Facts for PyPI decisions, computed in Python and handed to the policy as input.

Project facts (``input.facts``): typo-squat findings, dependency-confusion signals, identity
(revival) findings.  File facts (``input.files[].*``): OSV matches, approved-version pins and,
on download, provenance.  Large lists (the popularity corpus, OSV records, pins) come from the
active policy snapshot (``policies/facts/``, ``policies/lists/``) and are rebuilt off the event
loop whenever the policy folder is reloaded, so a decision's policy revision covers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from mirror_store.metadata import SqliteMetadata

from ..decision import FileFacts
from ..facts.corpus import corpus_from_doc
from ..facts.typosquat import SquatFinding, TyposquatDetector
from ..policy.snapshot import Snapshot
from ..upstream import UpstreamClient
from .history import history_facts
from .identity import IdentityStore
from .model import File
from .provenance import ProvenanceStore
from .sources import ProjectPage

CORPUS = "facts/pypi-popular"
OSV = "lists/osv"
PINS = "lists/pins"


class OsvLookup(Protocol):
    def matches(self, name: str, version: str | None) -> Iterable[Any]: ...


class PinLookup(Protocol):
    def for_project(self, name: str) -> object | None: ...
    def check(self, name: str, version: str, sha256: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Lists:
    popular: TyposquatDetector | None = None
    osv: OsvLookup | None = None
    pins: PinLookup | None = None


_DETECTORS: dict[str, TyposquatDetector] = {}
# Findings down to this score reach the policy: the rule combines them with the project's
# history (typosquat.suspect_score for new projects, deny_score for any), so the floor sits
# below every threshold an admin would set.
REPORT_FLOOR = 0.25


def _detector(digest: str, corpus: object) -> TyposquatDetector:
    """Build (or reuse, for the same corpus file content) the popularity detector (~0.5 s)."""
    hit = _DETECTORS.get(digest) if digest else None
    if hit is None:
        ranks, _ = corpus_from_doc(corpus, f"policies/{CORPUS}.json")
        hit = TyposquatDetector(ranks, report_threshold=REPORT_FLOOR)
        if digest:
            _DETECTORS.clear()  # keep only the current corpus
            _DETECTORS[digest] = hit
    return hit


def build_osv(doc: object) -> OsvLookup | None:
    if doc is None:
        return None
    from ..facts.osv import OsvIndex

    return OsvIndex.from_document(doc)


def build_pins(doc: object) -> PinLookup | None:
    if doc is None:
        return None
    from ..facts.pins import PinIndex

    return PinIndex.from_document(doc)


class PypiFacts:
    def __init__(self, meta: SqliteMetadata, clients: dict[str, UpstreamClient]) -> None:
        self._identity = IdentityStore(meta)
        self._provenance = ProvenanceStore(meta)
        self._clients = clients
        self._lists = _Lists()
        self._internal: set[str] = set()
        self._internal_detector: TyposquatDetector | None = None
        self._squats: dict[str, list[dict[str, Any]]] = {}
        self.monitor_rules: frozenset[str] = frozenset()

    # -- lists ------------------------------------------------------------------------------

    def prepare(self, snapshot: Snapshot) -> Callable[[], None]:
        """Build the lists of *snapshot* (blocking: call off the loop); return the commit."""
        corpus = snapshot.lists.get(CORPUS)
        popular = None
        if corpus is not None:
            popular = _detector(snapshot.list_digests.get(CORPUS, ""), corpus)
        lists = _Lists(
            popular, build_osv(snapshot.lists.get(OSV)), build_pins(snapshot.lists.get(PINS))
        )
        config = snapshot.data.get("airlock", {}).get("config", {}).get("pypi", {})
        monitor = config.get("monitor_rules", []) if isinstance(config, dict) else []
        if not isinstance(monitor, list) or not all(isinstance(r, str) for r in monitor):
            raise ValueError("data/pypi.json: monitor_rules must be a list of rule ids")

        def commit() -> None:
            self._lists = lists
            self._squats.clear()
            self.monitor_rules = frozenset(monitor)

        return commit

    def note_internal(self, name: str) -> None:
        """A project an internal index serves: protected against look-alikes from now on."""
        if name not in self._internal:
            self._internal.add(name)
            self._internal_detector = TyposquatDetector(
                {}, self._internal, report_threshold=REPORT_FLOOR
            )
            self._squats.clear()

    # -- project facts ------------------------------------------------------------------------

    def typosquat(self, name: str) -> list[dict[str, Any]]:
        hit = self._squats.get(name)
        if hit is not None:
            return hit
        findings = []
        if name not in self._internal:
            for detector in (self._lists.popular, self._internal_detector):
                if detector is not None:
                    findings += detector.check(name)
        out = squat_input(findings)
        if len(self._squats) > 65536:
            self._squats.clear()
        self._squats[name] = out
        return out

    async def project(self, page: ProjectPage, kind: str) -> dict[str, Any]:
        name = page.detail.name
        if kind == "internal":
            self.note_internal(name)
        public = kind != "internal"
        squats = self.typosquat(name) if public else []
        extra = {"history": history_facts(page.detail)} if squats else {}
        return extra | {
            "upstream_kind": kind,
            "stale": page.stale is not None,
            "typosquat": squats,
            "identity": await self._identity.check(name, page.detail) if public else [],
            "internal_errors": list(page.internal_errors),
            "previously_internal": page.previously_internal,
        }

    # -- file facts ---------------------------------------------------------------------------

    def files(self, name: str, files: tuple[FileFacts, ...]) -> tuple[FileFacts, ...]:
        """Add OSV matches and pin verdicts to the files of projects that have any.

        Files of other projects carry neither key (the input stays small: its size is most of
        the engine's cost); the rules read a missing ``osv`` as no match and a missing ``pin``
        as "not on the approved list".
        """
        osv, pins = self._lists.osv, self._lists.pins
        has_pins = pins is not None and pins.for_project(name) is not None
        has_osv = osv is not None and bool(osv.matches(name, None))
        if not has_pins and not has_osv:
            return files
        out = []
        for f in files:
            extra: dict[str, Any] = {}
            if has_osv and osv is not None:
                matches = osv.matches(name, f.version)
                if matches:
                    extra["osv"] = [m.to_input() for m in matches]
            if has_pins and pins is not None:
                sha = f.hashes.get("sha256")
                extra["pin"] = pins.check(name, f.version or "", sha).to_input()
            out.append(replace(f, extra=f.extra | extra) if extra else f)
        return tuple(out)

    async def provenance(
        self, upstream: str, name: str, f: File, version: str | None
    ) -> dict[str, Any]:
        return await self._provenance.facts(name, f, version, self._clients.get(upstream))


def squat_input(findings: Iterable[SquatFinding]) -> list[dict[str, Any]]:
    """Findings as the policy input lists them (best first, the score also as text)."""
    return [
        f.to_input() | {"score_text": f"{f.score:.2f}"}
        for f in sorted(findings, key=lambda f: (-f.score, f.target))
    ]


async def prepare_async(facts: PypiFacts, snapshot: Snapshot) -> None:
    commit = await asyncio.to_thread(facts.prepare, snapshot)
    commit()
