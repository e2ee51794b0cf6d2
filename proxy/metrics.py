"""The app's Prometheus metrics: one ``Metrics`` object (own ``CollectorRegistry``) per app.

No default/global registry: several apps run in one test process, and each must count only its
own traffic.  Every recording method is cheap, never raises into a request, and is safe from any
thread (prometheus_client's values take a lock).  Gauges that cost I/O (store size, policy
status) are collected on scrape by ``metrics_collectors``; this module imports neither
``aiohttp.web`` nor the app's keys, so ``appkeys`` and ``upstream`` can depend on it freely.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# (upstream name, seconds until the response status was known, status; 0 = no response)
UpstreamObserver = Callable[[str, float, int], None]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "airlock_http_requests",
            "HTTP responses by route (the route's pattern, not the raw path) and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.decisions = Counter(
            "airlock_decisions",
            "Policy decisions (one per decided request) by ecosystem, action and outcome.",
            ["ecosystem", "action", "outcome"],
            registry=r,
        )
        self.decision_rules = Counter(
            "airlock_decision_rules",
            "Rules named in decisions (a decision naming two rules counts once for each).",
            ["ecosystem", "rule", "outcome"],
            registry=r,
        )
        self.served = Counter(
            "airlock_artifacts_served",
            "Artifact responses by source: store (a stored blob) or upstream (a running fill).",
            ["source"],
            registry=r,
        )
        self.served_bytes = Counter(
            "airlock_served_bytes",
            "Artifact bytes sent to clients, by source.",
            ["source"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "airlock_upstream_request_seconds",
            "Time from sending an upstream request until its status is known.",
            ["upstream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            "airlock_upstream_requests",
            "Upstream requests by upstream and status (0: no response, e.g. refused or timeout).",
            ["upstream", "status"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "airlock_upstream_circuit_open",
            "1 while an upstream's circuit breaker is open (stored content answered without "
            "asking it), else 0.",
            ["upstream"],
            registry=r,
        )
        self.circuit_opened = Counter(
            "airlock_upstream_circuit_opened",
            "Times an upstream's circuit breaker opened (a failed probe re-opens it).",
            ["upstream"],
            registry=r,
        )
        self.scan_verdicts = Counter(
            "airlock_scan_verdicts",
            "Model-scanner verdicts by verdict.",
            ["verdict"],
            registry=r,
        )
        self._sources = {"store": 0, "upstream": 0}
        Gauge(
            "airlock_store_hit_ratio",
            "Share of artifact responses served from the store since start (NaN before any).",
            registry=r,
        ).set_function(self.hit_ratio)
        self.decision_records_dropped = Counter(
            "airlock_decision_records_dropped",
            "Decision events not persisted for the admin API because the queue was full.",
            registry=r,
        )

    # ---- recording (called from request paths: cheap, never raising) -------------------------
    def request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method if method in METHODS else "OTHER", route, str(status)).inc()

    def decision(self, event: Mapping[str, Any]) -> None:
        """A decision sink (``proxy.logging.add_decision_sink``)."""
        ecosystem = str(event.get("ecosystem", ""))
        outcome = str(event.get("outcome", ""))
        self.decisions.labels(ecosystem, str(event.get("action", "")), outcome).inc()
        rules: Sequence[Any] = event.get("rules") or ()
        for rule in rules or ("none",):
            self.decision_rules.labels(ecosystem, str(rule), outcome).inc()

    def served_from(self, source: str) -> None:
        """*source*: "store" (a stored blob) or "upstream" (a fill still streaming)."""
        self.served.labels(source).inc()
        if source in self._sources:  # fixed keys: the scrape thread may be summing them
            self._sources[source] += 1

    def sent_bytes(self, source: str, n: int) -> None:
        if n > 0:
            self.served_bytes.labels(source).inc(n)

    def upstream(self, name: str, seconds: float, status: int) -> None:
        """An ``UpstreamObserver``."""
        self.upstream_seconds.labels(name).observe(max(0.0, seconds))
        self.upstream_requests.labels(name, str(status)).inc()

    def circuit(self, upstream: str, state: str) -> None:
        """A ``CircuitObserver``: *state* is "open" or "closed"."""
        self.circuit_open.labels(upstream).set(1 if state == "open" else 0)
        if state == "open":
            self.circuit_opened.labels(upstream).inc()

    def scan_verdict(self, verdict: str) -> None:
        """Called by the scanner wiring once per scanned artifact ("clean", "findings", ...)."""
        self.scan_verdicts.labels(verdict).inc()

    def hit_ratio(self) -> float:
        """Share of artifact responses served from the store since start (NaN before any)."""
        total = sum(self._sources.values())
        return self._sources["store"] / total if total else float("nan")

    def traces(self, upstream: str) -> list[aiohttp.TraceConfig]:
        """Client-session trace configs timing every request of a session (for clients that
        are not an ``UpstreamClient``, e.g. the hub client, which follows redirects itself)."""
        return [upstream_trace(self.upstream, upstream)]


def upstream_trace(observe: UpstreamObserver, upstream: str) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def start(
        _s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: aiohttp.TraceRequestStartParams
    ) -> None:
        ctx.airlock_start = time.perf_counter()

    async def end(
        _s: aiohttp.ClientSession, ctx: SimpleNamespace, p: aiohttp.TraceRequestEndParams
    ) -> None:
        _observe(observe, upstream, ctx, p.response.status)

    async def failed(
        _s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: aiohttp.TraceRequestExceptionParams
    ) -> None:
        _observe(observe, upstream, ctx, 0)

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(failed)
    return trace


def _observe(observe: UpstreamObserver, upstream: str, ctx: SimpleNamespace, status: int) -> None:
    started = getattr(ctx, "airlock_start", None)
    if started is not None:
        observe(upstream, time.perf_counter() - started, status)
