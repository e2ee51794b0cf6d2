"""Loads the policy folder at start and hot-reloads it: snapshot, validate, build, swap.

A new revision is validated in a child process (a crash there cannot hurt the server), built
off the event loop, canary-checked in-process and only then swapped in with one assignment.
On any failure the old revision keeps serving and the error is logged and kept for status.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from .check import canary_check
from .golib import GolibEngine
from .opa import OpaEngine
from .rego import Compiled, RegopyEngine, compile_snapshot
from .snapshot import PolicyError, Snapshot, fingerprint, load_snapshot

log = structlog.get_logger("airlock.policy")

VALIDATE_TIMEOUT = 60.0


async def validate_in_child(snapshot: Snapshot, timeout: float = VALIDATE_TIMEOUT) -> None:
    """Raise PolicyError unless a child process parses, builds and canary-evaluates it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy.policy.check",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(snapshot.to_json().encode()), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise PolicyError(f"policy validation timed out after {timeout}s") from None
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip()
        if proc.returncode is not None and proc.returncode < 0:
            text = f"the policy engine crashed (signal {-proc.returncode}) on this policy. {text}"
        raise PolicyError(text or f"validation failed (exit {proc.returncode})")


async def load_compiled(root: Path) -> tuple[Snapshot, Compiled]:
    snapshot = await asyncio.to_thread(load_snapshot, root)
    await validate_in_child(snapshot)
    compiled = await asyncio.to_thread(compile_snapshot, snapshot)
    return snapshot, compiled


@dataclass
class PolicyStatus:
    revision: str
    reloads: int = 0
    last_reload_ok: bool = True
    last_error: str | None = None
    failures: int = 0


class PolicyManager:
    def __init__(
        self, root: Path, engine: RegopyEngine | OpaEngine | GolibEngine, interval: float
    ) -> None:
        self._root = root
        self._engine = engine
        self._interval = interval
        self._lock = asyncio.Lock()
        self._fingerprint = fingerprint(root)
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Condition()  # notified after every reload that did something
        self.status = PolicyStatus(engine.revision)
        # Facts providers rebuild their lists from each new snapshot: prepare(snapshot) may
        # raise (the reload then fails and nothing changes) and returns the commit step.
        self.listeners: list[Callable[[Snapshot], Callable[[], None]]] = []

    @property
    def attempts(self) -> int:
        """Reloads tried on a changed folder so far, successful or not."""
        return self.status.reloads + self.status.failures

    async def wait_for_attempt(self, seen: int) -> PolicyStatus:
        """Wait until more than *seen* reloads were tried (the watcher runs them on its own)."""
        async with self._attempted:
            await self._attempted.wait_for(lambda: self.attempts > seen)
        return self.status

    async def _notify(self) -> None:
        async with self._attempted:
            self._attempted.notify_all()

    async def reload(self) -> PolicyStatus:
        """Try the folder as it is now; keep the old revision on any failure."""
        status = await self._reload()
        await self._notify()
        return status

    async def _reload(self) -> PolicyStatus:
        async with self._lock:
            self._fingerprint = await asyncio.to_thread(fingerprint, self._root)
            try:
                if isinstance(self._engine, OpaEngine | GolibEngine):  # OPA compiles and checks it
                    snapshot = await asyncio.to_thread(load_snapshot, self._root)
                    if snapshot.revision == self._engine.revision:
                        return self.status
                    commits = [await asyncio.to_thread(p, snapshot) for p in self.listeners]
                    old = self._engine.revision
                    await self._engine.load(snapshot)
                else:
                    snapshot, compiled = await load_compiled(self._root)
                    if compiled.revision == self._engine.revision:
                        return self.status
                    commits = [await asyncio.to_thread(p, snapshot) for p in self.listeners]
                    candidate = RegopyEngine(compiled, workers=1)
                    try:
                        await canary_check(candidate, compiled.entrypoints)
                    finally:
                        await candidate.close()
                    old = self._engine.revision
            except Exception as e:  # PolicyError, or a facts list that does not load
                self.status.last_reload_ok = False
                self.status.failures += 1
                self.status.last_error = str(e)
                log.error("policy_reload_failed", error=str(e), kept_revision=self._engine.revision)
                return self.status
            for commit in commits:
                commit()
            if isinstance(self._engine, RegopyEngine):
                self._engine.swap(compiled)
            self.status.revision = snapshot.revision
            self.status.reloads += 1
            self.status.last_reload_ok = True
            self.status.last_error = None
            log.info(
                "policy_reloaded",
                revision=snapshot.revision[:12],
                previous=old[:12],
                modules=len(snapshot.modules),
            )
            return self.status

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                current = await asyncio.to_thread(fingerprint, self._root)
                if current != self._fingerprint:
                    await asyncio.sleep(min(1.0, self._interval))  # let an editor finish saving
                    await self.reload()
            except Exception as e:  # the watcher must outlive any one bad reload
                log.error("policy_watch_error", error=str(e))

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
