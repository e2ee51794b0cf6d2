"""External OPA server backend ("opa-http"): the same snapshot, evaluated by OPA over REST.

Decisions: ``POST {opa_url}/v1/data/airlock/<ecosystem>/decision?strict-builtin-errors=true``
with ``{"input": ...}``; a per-request timeout; a circuit breaker that denies at once while OPA
is unreachable; a missing ``result`` is a deny; every result goes through ``parse_result``.

Delivery: the proxy owns the ``airlock/`` module ids and ``data.airlock`` on that OPA.  A
validated snapshot is pushed with ``PUT /v1/policies/airlock/<path>`` per changed module,
``DELETE`` for removed ones (in dependency order: an operation OPA rejects is retried after the
others, as long as that makes progress), then ``PUT /v1/data/airlock`` with the config and the
revision, read back and canary-evaluated.  While a push runs, new decisions wait and in-flight
ones drain, so every decision is evaluated by exactly the revision it records.  A rejected push
is rolled back to the previous snapshot; if even that fails, decisions deny until a push
succeeds.  A restarted (empty) OPA answers "undefined"; that triggers a re-push.

Not opa-python-client: see README, "OPA server mode".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from ..decision import Decision, Subject
from .engine import entrypoint, failed, missing_entrypoint, parse_result
from .inputs import build_input
from .snapshot import PolicyError, Snapshot

ENGINE = "opa-http"
MODULE_PREFIX = "airlock/"
PUSH_TIMEOUT = 30.0  # seconds per policy/data request (OPA compiles on every PUT)
GATE_WAIT = 30.0  # seconds a decision may wait for a push to finish before it is a deny
RESYNC_INTERVAL = 5.0  # seconds between checks that OPA still holds our revision

log = structlog.get_logger("airlock.policy")


class OpaUnavailable(Exception):
    """OPA could not be asked: connection error, timeout, or a gateway/non-OPA answer."""


class OpaRejected(Exception):
    """OPA answered with an error (a compile error on push, an evaluation error, a 4xx)."""


def _describe(body: Any, status: int) -> str:
    if not isinstance(body, dict):
        return f"HTTP {status}"
    parts = []
    for err in body.get("errors") or []:
        loc = err.get("location") or {}
        where = f" ({loc.get('file')}:{loc.get('row')})" if loc.get("file") else ""
        parts.append(f"{err.get('code')}: {err.get('message')}{where}")
    return "; ".join(parts) or f"{body.get('code', status)}: {body.get('message', '')}"


class OpaClient:
    """The four REST calls airlock needs, on the project's aiohttp."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, path: str, *, timeout: float | None = None, **kw: Any
    ) -> tuple[int, Any]:
        """(status, JSON body or None).  Raises OpaUnavailable on transport failures."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32))
        t = aiohttp.ClientTimeout(total=timeout or self.timeout)
        try:
            async with self._session.request(method, self.url + path, timeout=t, **kw) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise OpaUnavailable(f"OPA did not answer within {timeout or self.timeout}s") from None
        except aiohttp.ClientError as e:
            raise OpaUnavailable(f"OPA at {self.url} is unreachable: {e}") from None
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if status >= 502 or (status >= 400 and not isinstance(body, dict)):
            raise OpaUnavailable(f"OPA at {self.url} answered HTTP {status}")  # not OPA itself
        return status, body

    async def evaluate(self, entrypoint: str, doc: dict[str, Any]) -> Any:
        """The entrypoint's value, None when undefined; OpaRejected on OPA errors."""
        status, body = await self.request(
            "POST",
            f"/v1/data/{entrypoint}?strict-builtin-errors=true",
            json={"input": doc},
        )
        if status != 200:
            raise OpaRejected(f"OPA: {_describe(body, status)}")
        return body.get("result") if isinstance(body, dict) else None

    async def write(self, method: str, path: str, **kw: Any) -> None:
        status, body = await self.request(method, path, timeout=PUSH_TIMEOUT, **kw)
        if status >= 300:
            raise OpaRejected(_describe(body, status))

    async def read(self, path: str) -> Any:
        status, body = await self.request("GET", path, timeout=PUSH_TIMEOUT)
        if status != 200:
            raise OpaRejected(_describe(body, status))
        return body.get("result") if isinstance(body, dict) else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass
class CircuitBreaker:
    """Open after ``threshold`` consecutive transport failures; after ``cooldown`` seconds let
    one probe through: its success closes the circuit, its failure re-opens it."""

    threshold: int = 3
    cooldown: float = 5.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def allow(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if not self.probing and now - self.opened_at >= self.cooldown:
            self.probing = True
            return True
        return False

    def success(self) -> bool:
        """Record a success; True if this closed an open circuit."""
        was_open = self.opened_at is not None
        self.failures, self.opened_at, self.probing = 0, None, False
        return was_open

    def failure(self, now: float) -> None:
        self.failures += 1
        self.probing = False
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = now


class OpaEngine:
    """PolicyEngine on an external OPA server.  ``load`` pushes a snapshot (raises PolicyError,
    the previous revision keeps serving)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        upstream_kinds: dict[str, str] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = OpaClient(url, timeout)
        self.breaker = breaker or CircuitBreaker()
        self._clock = clock  # the breaker's cooldown and the re-push interval are read on it
        self._upstream_kinds = upstream_kinds or {}
        self._now_ns = now_ns  # the policy's input.now_ns (tests advance it)
        self._active: Snapshot | None = None
        self._dirty = False  # OPA may hold a half-applied push: deny until a push succeeds
        self._push_lock = asyncio.Lock()
        self._open = asyncio.Event()
        self._open.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._inflight = 0
        self._resync: asyncio.Task[None] | None = None
        self._last_resync = float("-inf")

    @property
    def revision(self) -> str:
        return self._active.revision if self._active else ""

    @property
    def name(self) -> str:
        return ENGINE

    @property
    def page_chunk(self) -> int:
        return 500  # one HTTP round trip per chunk; OPA's cost is linear in the files

    # -- decisions -------------------------------------------------------------

    async def decide(self, subject: Subject) -> Decision:
        if not self._open.is_set():
            try:
                await asyncio.wait_for(self._open.wait(), GATE_WAIT)
            except TimeoutError:
                return failed("a policy push to OPA is taking too long", self.revision, ENGINE)
        active = self._active
        if active is None or self._dirty:
            self._schedule_resync()
            why = "OPA holds no complete airlock policy (re-push pending)"
            return failed(why, self.revision, ENGINE)
        missing = missing_entrypoint(subject, active.entrypoints(), active.revision, ENGINE)
        if missing is not None:
            return missing
        if not self.breaker.allow(self._clock()):
            why = f"OPA at {self.client.url} is unreachable (circuit open); not asking"
            return failed(why, active.revision, ENGINE)
        self._inflight += 1
        self._drained.clear()
        try:
            return await self._evaluate(subject, active.revision)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._drained.set()

    async def _evaluate(self, subject: Subject, revision: str) -> Decision:
        kind = self._upstream_kinds.get(subject.upstream, "public")
        doc = build_input(subject, self._now_ns(), kind)
        try:
            result = await self.client.evaluate(entrypoint(subject), doc)
        except OpaUnavailable as e:
            self.breaker.failure(self._clock())
            return failed(str(e), revision, ENGINE)
        except OpaRejected as e:
            self.breaker.success()
            return failed(str(e)[:500], revision, ENGINE)
        if self.breaker.success() or result is None:
            self._schedule_resync()  # OPA was down or lost our policy: was it restarted empty?
        return parse_result(result, revision, ENGINE)

    # -- delivery --------------------------------------------------------------

    async def load(self, snapshot: Snapshot) -> None:
        """Push *snapshot* to OPA and make it the active revision, or raise PolicyError."""
        async with self._push_lock:
            await self._gated_install(snapshot)

    async def _gated_install(self, snapshot: Snapshot) -> None:
        """Close the gate, let in-flight decisions finish, push, reopen.  Holds _push_lock."""
        self._open.clear()
        try:
            await self._drained.wait()
            await self._install(snapshot)
        finally:
            self._open.set()

    async def _install(self, snapshot: Snapshot) -> None:
        old = self._active
        try:
            await self._push(snapshot)
            await self._canaries(snapshot)
        except (PolicyError, OpaRejected, OpaUnavailable) as e:
            self._dirty = True
            if old is not None:
                try:
                    await self._push(old)
                    self._dirty = False
                except (PolicyError, OpaRejected, OpaUnavailable) as e2:
                    log.error("opa_rollback_failed", error=str(e2), revision=old.revision[:12])
            raise PolicyError(f"OPA at {self.client.url} refused the policy: {e}") from None
        self._active, self._dirty = snapshot, False

    async def _push(self, snapshot: Snapshot) -> None:
        target = {MODULE_PREFIX + k: v for k, v in snapshot.modules.items()}
        current = await self._modules()
        try:
            await self._apply(
                [(m, src) for m, src in target.items() if current.get(m) != src]
                + [(m, None) for m in current if m not in target]
            )
        except PolicyError:
            # Some changes compile only together (a function renamed in two files): remove our
            # modules, then add the new ones.  The closed gate hides the empty state.
            await self._apply([(m, None) for m in await self._modules()])
            await self._apply(list(target.items()))
        airlock = {**snapshot.data.get("airlock", {}), "revision": snapshot.revision}
        await self.client.write("PUT", "/v1/data/airlock", json=airlock)
        seen = await self.client.read("/v1/data/airlock/revision")
        if seen != snapshot.revision:
            raise PolicyError(f"OPA holds revision {seen!r} after the push, not ours")

    async def _modules(self) -> dict[str, str]:
        listed = await self.client.read("/v1/policies") or []
        return {p["id"]: p.get("raw", "") for p in listed if p["id"].startswith(MODULE_PREFIX)}

    async def _apply(self, ops: list[tuple[str, str | None]]) -> None:
        """PUT (source) or DELETE (None) each module; one OPA rejects is retried after the
        others, as long as a pass makes progress.  Raises PolicyError with OPA's errors."""
        while ops:
            rejected, errors = [], []
            for mid, src in ops:
                path = "/v1/policies/" + quote(mid, safe="/")
                try:
                    if src is None:
                        await self.client.write("DELETE", path)
                    else:
                        headers = {"Content-Type": "text/plain"}
                        await self.client.write("PUT", path, data=src.encode(), headers=headers)
                except OpaRejected as e:
                    rejected.append((mid, src))
                    errors.append(str(e))
            if len(rejected) == len(ops):
                raise PolicyError("; ".join(dict.fromkeys(errors)))
            ops = rejected

    async def _canaries(self, snapshot: Snapshot) -> None:
        from .check import CANARIES

        for ecosystem, subject in CANARIES.items():
            if f"airlock/{ecosystem}/decision" in snapshot.entrypoints():
                d = await self._evaluate(subject, snapshot.revision)
                if d.error is not None:
                    msg = f"canary evaluation of airlock.{ecosystem}.decision: {d.error}"
                    raise PolicyError(msg)

    def _schedule_resync(self) -> None:
        now = self._clock()
        if self._resync is None and now - self._last_resync >= RESYNC_INTERVAL:
            self._last_resync = now
            self._resync = asyncio.get_running_loop().create_task(self._resync_once())

    async def _resync_once(self) -> None:
        """If OPA no longer holds the active revision (restarted, overwritten), push it again."""
        try:
            async with self._push_lock:  # compare with the revision no push is changing now
                active = self._active
                if active is None:
                    return
                try:
                    seen = await self.client.read("/v1/data/airlock/revision")
                except OpaRejected:
                    seen = None
                if seen != active.revision or self._dirty:
                    log.warning("opa_repush", expected=active.revision[:12], found=str(seen)[:12])
                    await self._gated_install(active)
        except (PolicyError, OpaUnavailable) as e:
            log.error("opa_repush_failed", error=str(e))
        finally:
            self._resync = None

    async def close(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync
        await self.client.close()
