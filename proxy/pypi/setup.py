"""Builds the PyPI chain (clients → UpstreamIndex → StoredIndex → PolicyIndex, files, facts).

Used by the server's composition root and by ``airlock check pypi``, so both decide alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from mirror_store.blobs import BlobStore
from mirror_store.fill import Filler
from mirror_store.metadata import SqliteMetadata

from ..clock import SYSTEM_CLOCK, Clock
from ..egress.connector import guarded_session
from ..egress.guard import EgressGuard
from ..policy.engine import PolicyEngine
from ..policy.manager import PolicyManager
from ..policy.snapshot import Snapshot
from ..settings import Settings, UpstreamSettings, default_pypi_upstream
from ..upstream import UpstreamClient
from ..upstream_limits import CircuitBreaker, CircuitObserver
from .decisions import PageDecisionStore
from .facts import PypiFacts, prepare_async
from .files import PypiFiles
from .policy import PolicyIndex
from .sources import StoredIndex, UpstreamIndex


def pypi_upstreams(settings: Settings) -> tuple[UpstreamSettings, ...]:
    return settings.pypi.upstreams or (default_pypi_upstream(),)


@dataclass
class PypiStack:
    upstreams: tuple[UpstreamSettings, ...]
    clients: dict[str, UpstreamClient]
    stored: StoredIndex
    policy: PolicyIndex
    files: PypiFiles
    facts: PypiFacts
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def close(self) -> None:
        await self.stored.close()  # background revalidations first: they use the sessions
        for s in self.sessions:
            await s.close()


async def build_pypi(
    settings: Settings,
    meta: SqliteMetadata,
    blobs: BlobStore,
    filler: Filler,
    engine: PolicyEngine,
    snapshot: Snapshot,
    manager: PolicyManager | None,
    observe: Callable[[str, float, int], None] | None = None,  # upstream latency (metrics)
    clock: Clock = SYSTEM_CLOCK,
    circuit: CircuitObserver | None = None,  # circuit breaker changes (metrics)
) -> PypiStack:
    upstreams = pypi_upstreams(settings)
    sessions: list[aiohttp.ClientSession] = []
    clients: dict[str, UpstreamClient] = {}
    urls = [u.url for u in upstreams]
    for u in upstreams:  # one session per upstream, closed with the stack
        session = guarded_session(EgressGuard.build("pypi", u.name, urls, settings.egress.allow))
        sessions.append(session)
        breaker = CircuitBreaker(u.name, u.limits, clock, circuit)
        clients[u.name] = UpstreamClient(session, u.name, u.timeout, observe, u.limits, breaker)
    wall = lambda: clock.now_ns() / 1e9  # noqa: E731 - page ages, on the injected clock
    upstream_index = UpstreamIndex([(u, clients[u.name]) for u in upstreams], wall)
    stored = StoredIndex(
        upstream_index,
        meta,
        ttl=settings.pypi.page_ttl,
        offline=settings.pypi.offline,
        clock=wall,
        memory_files=settings.pypi.memory_files,
    )
    facts = PypiFacts(meta, clients)
    await prepare_async(facts, snapshot)
    if manager is not None:
        manager.listeners.append(facts.prepare)
    policy = PolicyIndex(
        stored,
        engine,
        kinds=upstream_index.kinds,
        mode=settings.policy.mode,
        denied_files=settings.pypi.denied_files,
        facts=facts,
        memory_files=settings.pypi.memory_files,
        decision_ttl=settings.policy.decision_ttl,
        clock=clock,
        store=await asyncio.to_thread(PageDecisionStore, meta),  # schema: sync sqlite
    )
    files = PypiFiles(policy, meta, blobs, filler, clients, settings.pypi.offline)
    return PypiStack(upstreams, clients, stored, policy, files, facts, sessions)
