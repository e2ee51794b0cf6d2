"""PolicyIndex: the outermost layer.  Every page and file request is decided here.

Facts about each file (version, kind, hashes, upload time as ns, yanked) are computed in
Python and handed to the engine; the one Decision then filters the page, or refuses a file,
and is logged once as a ``decision`` event.  In monitor mode decisions are logged but never
enforced.  A denied file stays visible in the page as yanked with the reason (default) or is
left out (``denied_files = "hide"``); a download of it is always refused with a 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..clock import SYSTEM_CLOCK, Clock
from ..decision import Action, Client, Decision, Subject
from ..errors import Denied, NotFound
from ..logging import log_decision
from ..lru import SizedLru
from ..policy.batch import decide_chunked
from ..policy.engine import PolicyEngine, apply_monitor
from .decisions import PageDecisionStore, key_digest
from .facts import PypiFacts
from .filefacts import file_facts
from .model import File, ProjectDetail
from .sources import Index, ProjectPage

DECISION_TTL = 300.0  # seconds before a page decision is re-evaluated (in the background)
CACHE_ENTRIES = 2048
PROVENANCE_ENTRIES = 65536


@dataclass(frozen=True, slots=True)
class _View:
    """A page as one client group sees it under one policy revision."""

    at: float
    decision: Decision
    page: ProjectPage  # filtered
    page_detail: ProjectDetail  # the unfiltered content it was decided on


class PolicyIndex:
    def __init__(
        self,
        inner: Index,
        engine: PolicyEngine,
        *,
        kinds: Mapping[str, str],
        mode: Literal["enforce", "monitor"],
        denied_files: Literal["yank", "hide"],
        facts: PypiFacts | None = None,
        store: PageDecisionStore | None = None,
        memory_files: int = 250_000,
        decision_ttl: float = DECISION_TTL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._facts = facts
        self._store = store
        self._engine = engine
        self._kinds = kinds
        self._monitor = mode == "monitor"
        self._decision_ttl = decision_ttl
        self._denied_files = denied_files
        self._cache: SizedLru[tuple[object, ...], _View] = SizedLru(
            CACHE_ENTRIES, max_size=memory_files, size=lambda v: len(v.page_detail.files)
        )
        self._refreshing: set[tuple[object, ...]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._provenance_seen: SizedLru[tuple[str, str], dict[str, Any] | None] = SizedLru(
            PROVENANCE_ENTRIES
        )

    def kind_of(self, upstream: str) -> str:
        return self._kinds.get(upstream, "public")

    async def _decide(self, subject: Subject) -> Decision:
        decision = await decide_chunked(self._engine, subject)
        if self._facts is not None:
            decision = apply_monitor(decision, self._facts.monitor_rules)
        if self._monitor:
            decision = replace(decision, enforced=False)
        return decision

    async def _subject(
        self,
        page: ProjectPage,
        action: Action,
        client: Client,
        files: tuple[File, ...],
        extra_file_facts: dict[str, Any] | None = None,
    ) -> Subject:
        kind = self._kinds.get(page.upstream, "public")
        facts = tuple(file_facts(f) for f in files)
        if extra_file_facts:
            facts = tuple(replace(f, extra=f.extra | extra_file_facts) for f in facts)
        if self._facts is None:
            extra: dict[str, Any] = {"upstream_kind": kind, "stale": page.stale is not None}
        else:
            extra = await self._facts.project(page, kind)
            facts = self._facts.files(page.detail.name, facts)
            extra["osv"] = any("osv" in f.extra for f in facts)  # lets the OSV rules skip
        return Subject(
            ecosystem="pypi",
            action=action,
            project=page.detail.name,
            upstream=page.upstream,
            client=client,
            files=facts,
            extra=extra,
        )

    def _key(self, page: ProjectPage, client: Client) -> tuple[object, ...]:
        # Everything the page decision depends on besides the clock: the page content, the
        # fetch's own facts, the policy revision and the client's groups.
        return (
            page.detail.name,
            page.upstream,
            page.content_id or id(page.detail),
            page.internal_errors,
            page.previously_internal,
            self._engine.revision,
            client.groups,
        )

    def _cached(self, key: tuple[object, ...], page: ProjectPage, client: Client) -> _View | None:
        """A current view; an expired one is still returned while a refresh runs in the
        background (time-dependent rules may lag by one evaluation, never the policy)."""
        view = self._cache.get(key)
        if view is None or (not page.content_id and view.page_detail is not page.detail):
            return None
        if self._clock.monotonic() - view.at >= self._decision_ttl and key not in self._refreshing:
            self._refreshing.add(key)
            task = asyncio.create_task(self._refresh(key, page, client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return view

    def _remember(self, key: tuple[object, ...], view: _View) -> _View:
        return self._cache.put(key, view)

    async def _stored(
        self, key: tuple[object, ...], page: ProjectPage, client: Client
    ) -> _View | None:
        """The decision a previous run of the proxy made on this very page, if kept."""
        if self._store is None or not page.content_id:
            return None
        hit = await self._store.get(key_digest(key))
        if hit is None:
            return None
        decided_at, decision = hit
        age = max(0.0, self._clock.now_ns() / 1e9 - decided_at)
        view = _View(
            self._clock.monotonic() - age, decision, self._filter(page, decision), page.detail
        )
        self._remember(key, view)
        return self._cached(key, page, client)  # schedules a refresh when it is old

    async def settled(self) -> None:
        """Wait until the background re-evaluations started so far have finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _refresh(self, key: tuple[object, ...], page: ProjectPage, client: Client) -> None:
        try:
            await self._evaluate(key, page, client)
        finally:
            self._refreshing.discard(key)

    async def _evaluate(self, key: tuple[object, ...], page: ProjectPage, client: Client) -> _View:
        subject = await self._subject(page, "page", client, page.detail.files)
        decision = await self._decide(subject)
        view = _View(self._clock.monotonic(), decision, self._filter(page, decision), page.detail)
        if decision.error is None:
            self._remember(key, view)
            if self._store is not None and page.content_id:
                await self._store.put(key_digest(key), page.detail.name, decision)
        return view

    def _filter(self, page: ProjectPage, decision: Decision) -> ProjectPage:
        if not decision.enforced:
            return page
        files = []
        for f in page.detail.files:
            if not decision.blocks_file(f.filename):
                files.append(f)
            elif self._denied_files == "yank":
                reason = "blocked by airlock: " + decision.summary(f.filename)
                files.append(replace(f, yanked=reason))
        return replace(page, detail=replace(page.detail, files=tuple(files)))

    async def project(self, name: str, client: Client) -> tuple[ProjectPage, Decision]:
        """The page with denied files yanked or removed (the same object while it is cached).

        Raises:
            Denied: the whole project is blocked and denied files are hidden.
        """
        page = await self._inner.project(name)
        key = self._key(page, client)
        view = (
            self._cached(key, page, client)
            or await self._stored(key, page, client)
            or await self._evaluate(key, page, client)
        )
        decision = view.decision
        subject = Subject("pypi", "page", name, page.upstream, client)  # for the log line
        log_decision(
            subject,
            decision,
            outcome=_outcome(decision, page),
            stale=page.stale,
            files=len(page.detail.files),
        )
        if decision.blocks and self._denied_files == "hide":
            raise Denied(decision.summary(), decision)
        if view.page.stale != page.stale:  # same content, now (or no longer) served stale
            return replace(view.page, stale=page.stale, checked_at=page.checked_at), decision
        return view.page, decision

    async def file(
        self, name: str, filename: str, client: Client, action: Action = "file"
    ) -> tuple[ProjectPage, File, Decision]:
        """Decide one file of a project: the decision that filtered its page when that is
        still current, else a decision on this file alone.

        Raises:
            Denied: the policy blocks it.
            NotFound: the project page does not list it (or no upstream has the project).
        """
        page = await self._inner.project(name)
        f = page.detail.file(filename)
        if f is None:
            raise NotFound(f"'{filename}' is not a file of project '{name}'")
        view = self._cached(self._key(page, client), page, client)
        provenance = await self._provenance(page, f)
        if view is not None and not (provenance and provenance.get("finding")):
            decision = view.decision
            subject = Subject(
                "pypi", action, name, page.upstream, client, files=(file_facts(f),)
            )  # for the log line
        else:  # decide this file alone, with the facts only a download has
            extra = {"provenance": provenance} if provenance else None
            subject = await self._subject(page, action, client, (f,), extra)
            decision = await self._decide(subject)
        blocked = decision.blocks_file(filename)
        outcome = (
            "deny" if blocked else ("monitor-deny" if decision.file_reasons(filename) else "allow")
        )
        log_decision(subject, decision, outcome=outcome)
        if blocked:
            raise Denied(decision.summary(filename), decision)
        return page, f, decision

    async def _provenance(self, page: ProjectPage, f: File) -> dict[str, Any] | None:
        if self._facts is None:
            return None
        key = (page.detail.name, f.filename)
        hit = self._provenance_seen.peek(key)
        if hit is None:
            version = file_facts(f).version
            hit = await self._facts.provenance(page.upstream, page.detail.name, f, version)
            self._provenance_seen.put(key, hit)
        return hit


def _outcome(decision: Decision, page: ProjectPage) -> str:
    if decision.allow and not decision.file_denials:
        return "allow"
    if not decision.enforced:
        return "monitor-deny"
    return "deny" if not decision.allow else "filter"
