"""HfService: each Hub request as facts → one policy decision → the answer's content.

The order is the same for every endpoint: bare repo info (identity, visibility), revision →
commit (the approved commit in ``resolve-approved`` mode), the facts the endpoint needs, the
decision (outermost: stored content is re-decided on every request), then the content.  A
"does not exist" found while gathering facts is raised only after the policy allowed the
request, so a block is never dressed up as absence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..decision import Client
from ..errors import AirlockError, UpstreamInvalid, UpstreamUnavailable
from .approvals import PolicyData
from .errors import HubNotFound
from .files import HfFileContext
from .hub_client import HubClient, HubResponse
from .model import FileMeta, RepoInfo, RepoRef, is_commit
from .paths import Api, Resolve
from .policy import Endpoint, HfFacts, HfPolicy
from .sources import Auth, HubSource, Page
from .wire import INFO_KEYS, TREE_KEYS, normalise_query


@dataclass(frozen=True, slots=True)
class Resolution:
    commit: str | None  # what the request will be served from
    upstream_commit: str | None = None  # where the revision points upstream now
    approved: str | None = None
    error: AirlockError | None = None  # raised after the decision if it allows


class HfService:
    def __init__(self, source: HubSource, policy: HfPolicy, data: PolicyData) -> None:
        # Scan facts of a file whose content is stored (None: not stored yet); set by setup.
        self.scan_facts: Callable[[FileMeta], Awaitable[dict[str, Any] | None]] | None = None
        self._source = source
        self._policy = policy
        self.policy = policy
        self._data = data

    async def _resolve_revision(self, repo: RepoRef, revision: str, auth: Auth) -> Resolution:
        if is_commit(revision):
            return Resolution(revision)
        data = await self._data.current()
        approved = (
            data.approved_commit(repo.key, revision)
            if data.unpinned == "resolve-approved"
            else None
        )
        try:
            upstream, _ = await self._source.commit_for(repo, revision, auth)
        except (HubNotFound, UpstreamUnavailable, UpstreamInvalid) as e:
            if approved is None and not isinstance(e, HubNotFound):
                raise
            return Resolution(approved, None, approved, None if approved else e)
        if data.unpinned == "resolve-approved":
            return Resolution(approved, upstream, approved)
        return Resolution(upstream, upstream)

    async def _decide(
        self,
        ref: RepoRef,
        endpoint: Endpoint,
        bare: RepoInfo,
        revision: str | None,
        res: Resolution,
        client: Client,
        **more: object,
    ) -> None:
        facts = HfFacts(
            ref,
            endpoint,
            bare,
            revision=revision,
            commit=res.commit,
            upstream_commit=res.upstream_commit,
            approved_commit=res.approved,
            stale=bare.stale,
            **more,  # type: ignore[arg-type]
        )
        data = await self._data.current()
        await self._policy.check(facts, client, data.monitor_rules)
        if res.error is not None:
            raise res.error

    # ---- /resolve ----------------------------------------------------------------------------
    async def resolve(self, req: Resolve, auth: Auth, client: Client) -> HfFileContext:
        bare = await self._source.info(req.ref, None, "", auth)
        repo = bare.canonical
        res = await self._resolve_revision(repo, req.revision, auth)
        meta = None
        if res.commit is not None and res.error is None:
            try:
                meta = await self._source.file_meta(
                    repo, res.commit, req.path, auth, restricted=not bare.public
                )
            except HubNotFound as e:
                res = Resolution(res.commit, res.upstream_commit, res.approved, e)
        scan = None
        if meta is not None and self.scan_facts is not None:
            scan = await self.scan_facts(meta)
        await self._decide(
            req.ref,
            "resolve",
            bare,
            req.revision,
            res,
            client,
            path=req.path,
            meta=meta,
            extra={"scan": scan} if scan is not None else {},
        )
        assert res.commit is not None
        assert meta is not None
        return HfFileContext(repo, res.commit, meta, auth)

    # ---- /api/{type}s/{repo}[/revision/{rev}] ------------------------------------------------
    async def info(
        self, api: Api, raw_query: list[tuple[str, str]], auth: Auth, client: Client
    ) -> RepoInfo:
        bare = await self._source.info(api.ref, None, "", auth)
        repo = bare.canonical
        query = normalise_query(raw_query, INFO_KEYS)
        if api.op == "info":
            # The default branch: in resolve-approved mode, the approved commit's info.
            data = await self._data.current()
            approved = (
                data.approved_commit(repo.key, "main")
                if data.unpinned == "resolve-approved"
                else None
            )
            res = Resolution(approved or bare.sha, bare.sha, approved)
            await self._decide(api.ref, "info", bare, None, res, client)
            if approved is None:
                return bare if not query else await self._source.info(api.ref, None, query, auth)
            return await self._source.info(repo, approved, query, auth)
        assert api.revision is not None
        res = await self._resolve_revision(repo, api.revision, auth)
        await self._decide(api.ref, "revision", bare, api.revision, res, client)
        assert res.commit is not None
        return await self._source.info(repo, res.commit, query, auth)

    # ---- tree and paths-info of a commit -----------------------------------------------------
    async def _listing(
        self, api: Api, endpoint: Endpoint, auth: Auth, client: Client, **more: object
    ) -> tuple[RepoRef, RepoInfo, str]:
        bare = await self._source.info(api.ref, None, "", auth)
        repo = bare.canonical
        assert api.revision is not None
        res = await self._resolve_revision(repo, api.revision, auth)
        await self._decide(
            api.ref, endpoint, bare, api.revision, res, client, extra={"listing": more}
        )
        assert res.commit is not None
        return repo, bare, res.commit

    async def tree(
        self, api: Api, raw_query: list[tuple[str, str]], auth: Auth, client: Client
    ) -> Page:
        repo, bare, commit = await self._listing(api, "tree", auth, client, path=api.path)
        query = normalise_query(raw_query, TREE_KEYS)
        parts = ["tree", commit] + ([quote(api.path, safe="")] if api.path else [])

        async def fetch(hub: HubClient) -> HubResponse:
            return await hub.fetch("GET", hub.api_url(repo, *parts, query=query), auth.header)

        scope = "" if bare.public else auth.scope
        return await self._source.page(
            repo, commit, f"tree:{commit}/{api.path}?{query}", scope, fetch
        )

    async def paths_info(
        self, api: Api, paths: list[str], expand: bool, auth: Auth, client: Client
    ) -> Page:
        wanted = sorted({p.strip("/") for p in paths if p.strip("/")})
        repo, bare, commit = await self._listing(api, "paths-info", auth, client, paths=len(wanted))
        form = urlencode([("paths", p) for p in wanted] + [("expand", str(expand).lower())])
        digest = hashlib.sha256(json.dumps([wanted, expand]).encode()).hexdigest()

        async def fetch(hub: HubClient) -> HubResponse:
            return await hub.fetch(
                "POST",
                hub.api_url(repo, "paths-info", commit),
                auth.header,
                data=form.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

        scope = "" if bare.public else auth.scope
        return await self._source.page(repo, commit, f"paths:{commit}:{digest}", scope, fetch)
