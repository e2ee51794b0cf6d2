"""``/metrics`` and the scrape-time collectors: store usage, in-flight fills, policy reloads.

``setup_metrics(app)`` creates the app's ``Metrics`` (before start, so the core lifecycle can hand
its upstream observer to the clients), registers the decision sink, counts every response by
route pattern (``on_response_prepare``, so 401s written by a middleware count too) and adds the
``/metrics`` route.  A scrape renders in a worker thread, so walking the store never runs on the
event loop; the store walk is cached for ``STORE_MAX_AGE`` seconds.

``/metrics`` answers loopback clients without a token (a local Prometheus or node agent);
from anywhere else it needs a client with the admin scope.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mirror_store.blobs import LocalBlobStore

from .admin.auth import require_admin
from .appkeys import BLOBS, FILLER, METRICS, POLICY
from .logging import add_decision_sink
from .metrics import Metrics, UpstreamObserver
from .upstream_limits import CircuitObserver

STORE_MAX_AGE = 30.0  # seconds a store walk is reused for scrapes


@dataclass(frozen=True, slots=True)
class StoreUsage:
    blobs: int
    bytes: int
    measured_at: float


class StoreMeter:
    """Blob count and bytes of a LocalBlobStore; blocking, call it off the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: StoreUsage | None = None

    def measure(self, blobs: LocalBlobStore, max_age: float = STORE_MAX_AGE) -> StoreUsage:
        with self._lock:  # concurrent scrapes share one walk
            now = time.monotonic()
            if self._last is not None and now - self._last.measured_at <= max_age:
                return self._last
            count = size = 0
            for digest in blobs.digests():
                try:
                    size += os.stat(blobs.blob_path(digest)).st_size
                except FileNotFoundError:  # gc or fsck removed it meanwhile
                    continue
                count += 1
            self._last = StoreUsage(count, size, now)
            return self._last


def fills_in_flight(app: web.Application) -> int:
    filler = app.get(FILLER)
    return len(filler._inflight) if filler is not None else 0  # read-only peek: no API for it


class AppCollector:
    """Collects, on scrape, what is cheaper to read than to count: store, fills, policy."""

    def __init__(self, app: web.Application, meter: StoreMeter) -> None:
        self._app = app
        self._meter = meter

    def describe(self) -> Iterable[Metric]:
        return ()  # names vary with what is started; nothing to check for duplicates

    def collect(self) -> Iterator[Metric]:
        blobs = self._app.get(BLOBS)
        if blobs is not None:
            usage = self._meter.measure(blobs)
            yield GaugeMetricFamily("airlock_store_blobs", "Blobs in the store.", usage.blobs)
            yield GaugeMetricFamily("airlock_store_bytes", "Bytes of blobs stored.", usage.bytes)
        yield GaugeMetricFamily(
            "airlock_fills_in_flight",
            "Upstream fetches running into the store.",
            fills_in_flight(self._app),
        )
        manager = self._app.get(POLICY)
        if manager is None:
            return
        status = manager.status
        reloads = CounterMetricFamily(
            "airlock_policy_reloads",
            "Policy reloads by result (ok: a new revision swapped in).",
            labels=["result"],
        )
        reloads.add_metric(["ok"], status.reloads)
        failures = getattr(status, "failures", None)  # counted once PolicyStatus keeps it
        if isinstance(failures, int):
            reloads.add_metric(["error"], failures)
        yield reloads
        yield GaugeMetricFamily(
            "airlock_policy_last_reload_ok",
            "1 if the last policy reload succeeded (or none failed yet), else 0.",
            1 if status.last_reload_ok else 0,
        )
        info = GaugeMetricFamily(
            "airlock_policy_revision_info", "The policy revision serving.", labels=["revision"]
        )
        info.add_metric([status.revision[:12]], 1)
        yield info


COLLECTOR: web.AppKey[AppCollector] = web.AppKey("metrics_collector")
METER: web.AppKey[StoreMeter] = web.AppKey("store_meter")


def setup_metrics(app: web.Application) -> Metrics:
    metrics = Metrics()
    meter = StoreMeter()
    collector = AppCollector(app, meter)
    metrics.registry.register(collector)
    app[METRICS] = metrics
    app[METER] = meter
    app[COLLECTOR] = collector
    add_decision_sink(app, metrics.decision)
    app.on_response_prepare.append(_count_response)
    app.router.add_get("/metrics", handle_metrics)
    return metrics


def upstream_observer(app: web.Application) -> UpstreamObserver | None:
    """The app's upstream-latency observer for ``UpstreamClient`` (None without metrics)."""
    metrics = app.get(METRICS)
    return metrics.upstream if metrics is not None else None


def circuit_observer(app: web.Application) -> CircuitObserver | None:
    """The app's circuit-breaker observer for the upstream clients (None without metrics)."""
    metrics = app.get(METRICS)
    return metrics.circuit if metrics is not None else None


def route_label(request: web.Request) -> str:
    """The matched route's pattern ("/pypi/simple/{project}/"): bounded label values."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


async def _count_response(request: web.Request, response: web.StreamResponse) -> None:
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.request(request.method, route_label(request), response.status)


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


async def handle_metrics(request: web.Request) -> web.Response:
    if not is_loopback(request.remote):
        require_admin(request)
    body = await asyncio.to_thread(generate_latest, request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
