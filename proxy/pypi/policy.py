"""PolicyIndex: the outermost layer.  Every page and file request is decided here.

Facts about each file (version, kind, hashes, upload time as ns, yanked) are computed in
Python and handed to the engine; the one Decision then filters the page, or refuses a file,
and is logged once as a ``decision`` event.  In monitor mode decisions are logged but never
enforced.  A denied file stays visible in the page as yanked with the reason (default) or is
left out (``denied_files = "hide"``); a download of it is always refused with a 403.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ..decision import Action, Client, Decision, FileFacts, Subject
from ..errors import Denied, NotFound
from ..logging import log_decision
from ..policy.batch import decide_chunked
from ..policy.engine import PolicyEngine
from .model import File
from .sources import Index, ProjectPage

DECISION_TTL = 60.0  # seconds a page decision is reused for the same page and revision
CACHE_ENTRIES = 2048


@dataclass(frozen=True, slots=True)
class _View:
    """A page as one client group sees it under one policy revision."""

    at: float
    decision: Decision
    page: ProjectPage


def file_facts(f: File) -> FileFacts:
    version: str | None = None
    kind = "other"
    try:
        if f.filename.endswith(".whl"):
            version, kind = str(parse_wheel_filename(f.filename)[1]), "wheel"
        elif f.filename.endswith((".tar.gz", ".zip")):
            version, kind = str(parse_sdist_filename(f.filename)[1]), "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        pass
    upload_ns: int | None = None
    if f.upload_time:
        try:
            upload_ns = int(datetime.fromisoformat(f.upload_time).timestamp() * 1e9)
        except ValueError:
            upload_ns = None
    return FileFacts(
        filename=f.filename,
        version=version,
        kind=kind,
        hashes=dict(f.hashes),
        size=f.size,
        upload_time_ns=upload_ns,
        yanked=f.is_yanked,
        requires_python=f.requires_python,
    )


class PolicyIndex:
    def __init__(
        self,
        inner: Index,
        engine: PolicyEngine,
        *,
        kinds: Mapping[str, str],
        mode: Literal["enforce", "monitor"],
        denied_files: Literal["yank", "hide"],
    ) -> None:
        self._inner = inner
        self._engine = engine
        self._kinds = kinds
        self._monitor = mode == "monitor"
        self._denied_files = denied_files
        self._cache: OrderedDict[tuple[object, ...], _View] = OrderedDict()

    async def _decide(self, subject: Subject) -> Decision:
        decision = await decide_chunked(self._engine, subject)
        if self._monitor:
            decision = replace(decision, enforced=False)
        return decision

    def _subject(
        self, page: ProjectPage, action: Action, client: Client, files: tuple[File, ...]
    ) -> Subject:
        return Subject(
            ecosystem="pypi",
            action=action,
            project=page.detail.name,
            upstream=page.upstream,
            client=client,
            files=tuple(file_facts(f) for f in files),
            extra={
                "upstream_kind": self._kinds.get(page.upstream, "public"),
                "stale": page.stale is not None,
            },
        )

    def _key(self, page: ProjectPage, client: Client) -> tuple[object, ...]:
        return (
            page.detail.name,
            page.upstream,
            page.fetched_at,
            self._engine.revision,
            client.groups,
        )

    def _cached(self, key: tuple[object, ...]) -> _View | None:
        hit = self._cache.get(key)
        if hit is None or time.monotonic() - hit.at >= DECISION_TTL:
            return None
        self._cache.move_to_end(key)
        return hit

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
        subject = self._subject(page, "page", client, page.detail.files)
        key = self._key(page, client)
        view = self._cached(key)
        if view is None:
            decision = await self._decide(subject)
            view = _View(time.monotonic(), decision, self._filter(page, decision))
            if decision.error is None:
                self._cache[key] = view
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        decision = view.decision
        log_decision(subject, decision, outcome=_outcome(decision, page), stale=page.stale)
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
        subject = self._subject(page, action, client, (f,))
        view = self._cached(self._key(page, client))
        decision = view.decision if view is not None else await self._decide(subject)
        blocked = decision.blocks_file(filename)
        outcome = (
            "deny" if blocked else ("monitor-deny" if decision.file_reasons(filename) else "allow")
        )
        log_decision(subject, decision, outcome=outcome)
        if blocked:
            raise Denied(decision.summary(filename), decision)
        return page, f, decision


def _outcome(decision: Decision, page: ProjectPage) -> str:
    if decision.allow and not decision.file_denials:
        return "allow"
    if not decision.enforced:
        return "monitor-deny"
    return "deny" if not decision.allow else "filter"
