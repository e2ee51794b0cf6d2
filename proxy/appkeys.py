"""Typed application keys shared by the composition root and the handlers."""

from __future__ import annotations

from aiohttp import web

from mirror_store.blobs import LocalBlobStore
from mirror_store.fill import Filler
from mirror_store.metadata import SqliteMetadata

from .policy.manager import PolicyManager
from .policy.rego import RegopyEngine
from .settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
BLOBS: web.AppKey[LocalBlobStore] = web.AppKey("blobs")
META: web.AppKey[SqliteMetadata] = web.AppKey("meta")
FILLER: web.AppKey[Filler] = web.AppKey("filler")
ENGINE: web.AppKey[RegopyEngine] = web.AppKey("engine")
POLICY: web.AppKey[PolicyManager] = web.AppKey("policy_manager")
