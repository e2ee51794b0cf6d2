"""Typed application keys shared by the composition root and the handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from mirror_store.blobs import LocalBlobStore
from mirror_store.fill import Filler
from mirror_store.metadata import SqliteMetadata

from .clock import Clock
from .identity import IdentityRegistry
from .metrics import Metrics
from .policy.factory import Engine
from .policy.manager import PolicyManager
from .settings import Settings
from .trust.records import TrustRecords

if TYPE_CHECKING:  # these modules import this one
    from .trust.attest import Attestor
    from .trust.attest_served import ServedRecorder

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")  # what decisions read as now
BLOBS: web.AppKey[LocalBlobStore] = web.AppKey("blobs")
META: web.AppKey[SqliteMetadata] = web.AppKey("meta")
FILLER: web.AppKey[Filler] = web.AppKey("filler")
ENGINE: web.AppKey[Engine] = web.AppKey("engine")
POLICY: web.AppKey[PolicyManager] = web.AppKey("policy_manager")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")  # created by setup_admin, before start
RECORDS: web.AppKey[TrustRecords] = web.AppKey("trust_records")
SERVED_LOG: web.AppKey[ServedRecorder] = web.AppKey("served_log")  # served rows + approvals
ATTESTOR: web.AppKey[Attestor] = web.AppKey("attestor")  # the signing key and envelopes

# The identity registry the middleware consults (config clients plus API-made ones).
IDENTITY: web.AppKey[IdentityRegistry] = web.AppKey("identity")
# What the app's start found (store, policy revision and engine, upstreams): logged as
# ``airlock_started`` by ``proxy.serve`` once the socket listens.
START_SUMMARY: web.AppKey[dict[str, Any]] = web.AppKey("start_summary")
