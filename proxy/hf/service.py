"""HfService: each Hub request as facts → one policy decision → the answer's content.

The order is the same for every endpoint: bare repo info (identity, visibility), revision →
commit (the approved commit in ``resolve-approved`` mode), bare info once more from the hub
when that commit is new to the mirror (namespace reuse), the facts the endpoint needs, the
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
from .identity import SeenCommits
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


Resolver = Callable[[RepoInfo], Awaitable[Resolution]]


class HfService:
    def __init__(
        self, source: HubSource, policy: HfPolicy, data: PolicyData, seen: SeenCommits
    ) -> None:
        # Scan facts of a file whose content is stored (None: not stored yet); set by setup.
        self.scan_facts: Callable[[FileMeta], Awaitable[dict[str, Any] | None]] | None = None
        self._source = source
        self.source = source  # its background revalidations: settled() in tests
        self._policy = policy
        self.policy = policy
        self._data = data
        self._seen = seen

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

    async def _prepare(
        self, ref: RepoRef, auth: Auth, resolve: Resolver
    ) -> tuple[RepoInfo, Resolution]:
        """Bare repo info (identity, visibility) and what the request resolves to.

        Bare info is reused for ``hf.ttl``; a commit this repo name has not been vouched for
        (SeenCommits) may belong to a repo re-created under the name since, so the identity is
        then fetched from the hub again before anything of that commit is decided or served.
        When that check fails the request fails: stale info cannot vouch for a new commit.
        """
        started = self._source.now()
        bare = await self._source.info(ref, None, "", auth)
        res = await resolve(bare)
        commit = res.commit
        if commit is None or self._source.offline or await self._seen.known(ref, commit):
            return bare, res
        if bare.fetched_at < started:  # not asked for this request: ask the hub now
            try:
                bare = await self._source.info(ref, None, "", auth, fresh=True)
            except (UpstreamUnavailable, UpstreamInvalid) as e:
                raise UpstreamUnavailable(
                    f"commit {commit} of {ref.key} is new to this mirror, and checking upstream "
                    f"that {ref.key} is still the repository it knows failed: {e.message}"
                ) from e
            res = await resolve(bare)
        vouched = res.commit is not None and res.error is None
        if vouched and await self._policy.identity_facts(ref, bare) == ():  # as recorded
            assert res.commit is not None
            await self._seen.add(ref, res.commit)
        return bare, res

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
        if res.commit is not None:  # served under an identity checked for it (_prepare)
            await self._seen.add(ref, res.commit)

    async def _info_at(self, repo: RepoRef, commit: str, query: str, auth: Auth) -> RepoInfo:
        """Repo info at a commit, refused unless the hub answers for that very commit."""
        info = await self._source.info(repo, commit, query, auth)
        if info.sha != commit:
            raise UpstreamInvalid(
                f"asked for repo info of {repo.key} at {commit}, the hub answered {info.sha}"
            )
        return info

    # ---- /resolve ----------------------------------------------------------------------------
    async def resolve(self, req: Resolve, auth: Auth, client: Client) -> HfFileContext:
        async def resolution(bare: RepoInfo) -> Resolution:
            return await self._resolve_revision(bare.canonical, req.revision, auth)

        bare, res = await self._prepare(req.ref, auth, resolution)
        repo = bare.canonical
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
        query = normalise_query(raw_query, INFO_KEYS)
        if api.op == "info":
            # The default branch, decided as revision 'main' is (hf.rego); in resolve-approved
            # mode the approved commit's info, never where the branch points now.
            async def default_branch(bare: RepoInfo) -> Resolution:
                data = await self._data.current()
                approved = (
                    data.approved_commit(bare.canonical.key, "main")
                    if data.unpinned == "resolve-approved"
                    else None
                )
                return Resolution(approved or bare.sha, bare.sha, approved)

            bare, res = await self._prepare(api.ref, auth, default_branch)
            await self._decide(api.ref, "info", bare, None, res, client)
            if res.commit is None:
                return bare if not query else await self._source.info(api.ref, None, query, auth)
            if res.commit == bare.sha and not query:
                return bare
            return await self._info_at(bare.canonical, res.commit, query, auth)
        assert api.revision is not None
        revision = api.revision

        async def resolution(bare: RepoInfo) -> Resolution:
            return await self._resolve_revision(bare.canonical, revision, auth)

        bare, res = await self._prepare(api.ref, auth, resolution)
        await self._decide(api.ref, "revision", bare, api.revision, res, client)
        assert res.commit is not None
        return await self._info_at(bare.canonical, res.commit, query, auth)

    # ---- tree and paths-info of a commit -----------------------------------------------------
    async def _listing(
        self, api: Api, endpoint: Endpoint, auth: Auth, client: Client, **more: object
    ) -> tuple[RepoRef, RepoInfo, str]:
        revision = api.revision
        assert revision is not None

        async def resolution(bare: RepoInfo) -> Resolution:
            return await self._resolve_revision(bare.canonical, revision, auth)

        bare, res = await self._prepare(api.ref, auth, resolution)
        repo = bare.canonical
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
