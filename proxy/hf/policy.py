"""HfPolicy: the outermost layer of the Hub side.  Every request is decided here, once.

Facts are computed in Python (pinned or not, requested revision, resolved commit, approved
commit, identity findings, repo type / org / repo, file path, size, LFS) and handed to
``data.airlock.hf.decision`` as ``input.facts``; the one Decision becomes a 403 (GatedRepo,
with the reason) or lets the request through, and is logged once.  The repo's identity is
recorded on its first allowed decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..decision import Client, Decision, FileFacts, Subject
from ..errors import Denied
from ..logging import log_decision
from ..policy.engine import PolicyEngine, apply_monitor
from .identity import Finding, IdentityStore, findings
from .model import FileMeta, Identity, RepoInfo, RepoRef, is_commit

Endpoint = Literal["resolve", "info", "revision", "tree", "paths-info"]
UPSTREAM = "hf"


@dataclass(frozen=True, slots=True)
class HfFacts:
    requested: RepoRef
    endpoint: Endpoint
    info: RepoInfo  # bare repo info: identity and visibility
    revision: str | None = None  # as requested; None for bare info
    commit: str | None = None  # the commit the request will be served from
    upstream_commit: str | None = None  # where the revision points upstream now
    approved_commit: str | None = None  # proposed from policy data (resolve-approved mode)
    path: str | None = None
    meta: FileMeta | None = None
    findings: tuple[Finding, ...] = ()
    identity_recorded: bool = False
    stale: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def canonical(self) -> RepoRef:
        return self.info.canonical

    def to_input(self) -> dict[str, Any]:
        canonical = self.canonical
        return {
            "endpoint": self.endpoint,
            "repo_type": canonical.repo_type,
            "repo": canonical.repo_id,
            "repo_key": canonical.key,
            "org": canonical.org,
            "requested_repo": self.requested.repo_id,
            "requested_key": self.requested.key,
            "revision": self.revision,
            "pinned": is_commit(self.revision),
            "commit": self.commit,
            "upstream_commit": self.upstream_commit,
            "approved_commit": self.approved_commit,
            "path": self.path,
            "size": self.meta.size if self.meta else None,
            "lfs": self.meta.lfs if self.meta else None,
            "private": self.info.private,
            "gated": self.info.gated,
            "identity": self.info.identity().to_input(),
            "identity_recorded": self.identity_recorded,
            "identity_findings": [f.to_input() for f in self.findings],
            "stale": self.stale is not None,
            **self.extra,
        }


def file_facts(path: str, meta: FileMeta | None) -> FileFacts:
    if meta is None:
        return FileFacts(filename=path)
    hashes = {"sha256": meta.sha256} if meta.lfs else {"git-blob-sha1": meta.blob_sha1}
    return FileFacts(
        filename=path,
        kind="lfs" if meta.lfs else "regular",
        hashes={k: v for k, v in hashes.items() if v},
        size=meta.size,
    )


class HfPolicy:
    def __init__(
        self,
        engine: PolicyEngine,
        identities: IdentityStore,
        *,
        monitor: bool = False,
    ) -> None:
        self._engine = engine
        self._identities = identities
        self._monitor = monitor
        # Sees every (subject, decision) pair: ``airlock check hf`` prints them with the facts.
        self.observer: Callable[[Subject, Decision], None] | None = None

    async def identity_facts(
        self, requested: RepoRef, info: RepoInfo
    ) -> tuple[Finding, ...] | None:
        """Findings against the recorded identity; None when nothing is recorded yet."""
        recorded: Identity | None = await self._identities.get(requested)
        if recorded is None:
            return None
        return tuple(findings(requested, recorded, info.identity()))

    def subject(self, facts: HfFacts, client: Client) -> Subject:
        files = (file_facts(facts.path, facts.meta),) if facts.path else ()
        return Subject(
            ecosystem="hf",
            action="file" if facts.endpoint == "resolve" else "metadata",
            project=facts.canonical.repo_id,
            upstream=UPSTREAM,
            client=client,
            files=files,
            extra=facts.to_input(),
        )

    async def check(
        self, facts: HfFacts, client: Client, monitor_rules: frozenset[str] = frozenset()
    ) -> Decision:
        """Decide and log; raise Denied when the decision blocks.

        Raises:
            Denied: with every reason (rule id + sentence).
        """
        found = await self.identity_facts(facts.requested, facts.info)
        facts = replace(facts, findings=found or (), identity_recorded=found is not None)
        subject = self.subject(facts, client)
        decision = apply_monitor(await self._engine.decide(subject), monitor_rules)
        if self._monitor:
            decision = replace(decision, enforced=False)
        if self.observer is not None:
            self.observer(subject, decision)
        path = facts.path
        blocked = decision.blocks_file(path) if path else decision.blocks
        denied = not decision.allow or (path is not None and path in decision.file_denials)
        outcome = "deny" if blocked else ("monitor-deny" if denied else "allow")
        log_decision(
            subject,
            decision,
            outcome=outcome,
            endpoint=facts.endpoint,
            revision=facts.revision,
            commit=facts.commit,
            stale=facts.stale,
            findings=[f.kind for f in facts.findings],
        )
        if blocked:
            raise Denied(decision.summary(path), decision)
        if not denied and found is None:
            await self._identities.record(facts.requested, facts.info.identity())
        return decision
