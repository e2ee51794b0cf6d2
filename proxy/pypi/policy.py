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
from dataclasses import replace
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
from ..policy.engine import PolicyEngine
from .model import File
from .sources import Index, ProjectPage

DECISION_TTL = 30.0  # seconds a page decision is reused for the same page and revision


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
        self._cache: OrderedDict[tuple[object, ...], tuple[float, Decision]] = OrderedDict()

    async def _decide(self, subject: Subject, cache_key: tuple[object, ...] | None) -> Decision:
        now = time.monotonic()
        if cache_key is not None:
            hit = self._cache.get(cache_key)
            if hit is not None and now - hit[0] < DECISION_TTL:
                return hit[1]
        decision = await self._engine.decide(subject)
        if self._monitor:
            decision = replace(decision, enforced=False)
        if cache_key is not None and decision.error is None:
            self._cache[cache_key] = (now, decision)
            while len(self._cache) > 4096:
                self._cache.popitem(last=False)
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

    async def project(self, name: str, client: Client) -> tuple[ProjectPage, Decision]:
        """The page with denied files yanked or removed; Denied if the project is blocked
        and denied files are hidden."""
        page = await self._inner.project(name)
        subject = self._subject(page, "page", client, page.detail.files)
        key = (
            "page",
            name,
            page.upstream,
            page.fetched_at,
            self._engine.revision,
            client.groups,
            len(page.detail.files),
        )
        decision = await self._decide(subject, key)
        log_decision(subject, decision, outcome=_outcome(decision, page), stale=page.stale)
        if not decision.enforced:
            return page, decision
        if decision.blocks and self._denied_files == "hide":
            raise Denied(decision.summary(), decision)
        files = []
        for f in page.detail.files:
            if not decision.blocks_file(f.filename):
                files.append(f)
            elif self._denied_files == "yank":
                files.append(
                    replace(f, yanked="blocked by airlock: " + decision.summary(f.filename))
                )
        return replace(page, detail=replace(page.detail, files=tuple(files))), decision

    async def file(
        self, name: str, filename: str, client: Client, action: Action = "file"
    ) -> tuple[ProjectPage, File, Decision]:
        """Decide one file of a project.

        Raises:
            Denied: the policy blocks it.
            NotFound: the project page does not list it (or no upstream has the project).
        """
        page = await self._inner.project(name)
        f = page.detail.file(filename)
        if f is None:
            raise NotFound(f"'{filename}' is not a file of project '{name}'")
        subject = self._subject(page, action, client, (f,))
        decision = await self._decide(subject, None)
        blocked = decision.blocks_file(filename)
        log_decision(
            subject,
            decision,
            outcome="deny"
            if blocked
            else ("monitor-deny" if decision.file_reasons(filename) else "allow"),
        )
        if blocked:
            raise Denied(decision.summary(filename), decision)
        return page, f, decision


def _outcome(decision: Decision, page: ProjectPage) -> str:
    if decision.allow and not decision.file_denials:
        return "allow"
    if not decision.enforced:
        return "monitor-deny"
    return "deny" if not decision.allow else "filter"
