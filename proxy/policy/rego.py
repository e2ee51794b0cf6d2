"""The embedded Rego backend (regopy, Microsoft rego-cpp).  The only module that imports regopy.

Hardened as measured in the project's engine study: one compiled bundle per policy revision,
shared by thread-local interpreters; strict built-in errors; input passed only as a JSON term;
object-valued entrypoints; every error, undefined or malformed output is a deny.  Evaluation
runs on a small thread pool (ctypes releases the GIL) with a timeout, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..decision import Decision, Subject
from .engine import entrypoint, failed, missing_entrypoint, parse_result
from .inputs import build_input
from .snapshot import PolicyError, Snapshot

ENGINE = "regopy"
MAX_QUEUE_WAIT = 30.0  # seconds an evaluation may wait for a worker before it is a deny


@dataclass(frozen=True, slots=True)
class Compiled:
    bundle: Any  # regopy.Bundle
    revision: str
    entrypoints: frozenset[str]


def _new_interpreter() -> Any:
    from regopy import Interpreter, LogLevel

    interp = Interpreter()
    interp.log_level = LogLevel.NONE  # errors are read from exceptions, not stdout
    interp.strict_built_in_errors = True  # a failing built-in is an error, never "undefined"
    return interp


_ERROR_RX = re.compile(r"\(error (\d+):([^|\s]+)\|(\d+)\|\d+\s*\(errormsg (\d+):")


def describe_rego_error(text: str, sources: dict[str, str]) -> str:
    """regopy reports S-expressions with byte offsets; turn them into file:line:col: message."""
    out = []
    for m in _ERROR_RX.finditer(text):
        name_len, name, offset, msg_len = int(m[1]), m[2], int(m[3]), int(m[4])
        name = name[:name_len]
        msg = text[m.end() : m.end() + msg_len]
        src = sources.get(name, "")
        line = src.count("\n", 0, offset) + 1
        col = offset - (src.rfind("\n", 0, offset) + 1) + 1
        out.append(f"{name}:{line}:{col}: {msg}")
    if not out:
        msgs = [
            text[m.end() : m.end() + int(m[1])] for m in re.finditer(r"\(errormsg (\d+):", text)
        ]
        return "; ".join(dict.fromkeys(msgs)) or text.strip()[:300]
    return "; ".join(dict.fromkeys(out))


def compile_snapshot(snapshot: Snapshot) -> Compiled:
    """Parse and build a snapshot.  Blocking; raises PolicyError with file:line:col."""
    from regopy.rego_shared import RegoError

    interp = _new_interpreter()
    try:
        interp.add_data_json(json.dumps(snapshot.data))
        for name, source in snapshot.modules.items():
            interp.add_module(name, source)
        eps = snapshot.entrypoints()
        if not eps:
            raise PolicyError("no module declares package airlock.pypi or airlock.hf")
        bundle = interp.build(None, eps)
    except RegoError as e:
        raise PolicyError(describe_rego_error(str(e), snapshot.modules)) from None
    if not bundle.ok():
        raise PolicyError("policy bundle failed to build")
    return Compiled(bundle, snapshot.revision, frozenset(eps))


class _Local(threading.local):
    interp: Any = None


def evaluate(compiled: Compiled, local: _Local, entrypoint: str, input_json: str) -> Any:
    """One evaluation on this thread's interpreter.  Raises on any engine failure."""
    from regopy.rego_shared import (
        rego_bundle_query_entrypoint,
        rego_free_output,
        rego_output_ok,
        rego_output_string,
    )

    if local.interp is None:
        local.interp = _new_interpreter()
    interp = local.interp
    interp.set_input_term(input_json)
    out = rego_bundle_query_entrypoint(interp._impl, compiled.bundle._impl, entrypoint)
    try:
        if not rego_output_ok(out):
            raise RuntimeError("the engine reported an evaluation error")
        text = rego_output_string(out)
    finally:
        rego_free_output(out)
    if text == "undefined":
        return None
    if text.startswith("(error"):
        raise RuntimeError(describe_rego_error(text, {}))
    value = json.loads(text)  # "(error …" bodies and invalid JSON raise here
    return value["expressions"][0]


class RegopyEngine:
    """PolicyEngine on regopy.  ``swap`` installs a new compiled revision atomically."""

    def __init__(
        self,
        compiled: Compiled,
        *,
        workers: int = 2,
        timeout: float = 2.0,
        upstream_kinds: dict[str, str] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._active = compiled
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="airlock-rego")
        self._local = _Local()
        self._upstream_kinds = upstream_kinds or {}
        self._now_ns = now_ns  # the policy's input.now_ns (tests advance it)

    @property
    def revision(self) -> str:
        return self._active.revision

    @property
    def name(self) -> str:
        return ENGINE

    @property
    def page_chunk(self) -> int:
        return 48  # regopy's cost grows faster than linearly with input size

    def swap(self, compiled: Compiled) -> None:
        self._active = compiled

    async def decide(self, subject: Subject) -> Decision:
        compiled = self._active  # read once: the whole evaluation uses one revision
        missing = missing_entrypoint(subject, compiled.entrypoints, compiled.revision, ENGINE)
        if missing is not None:
            return missing
        ep = entrypoint(subject)
        doc = build_input(
            subject, self._now_ns(), self._upstream_kinds.get(subject.upstream, "public")
        )
        started: list[float] = []

        def work() -> Any:
            started.append(time.monotonic())
            result = evaluate(compiled, self._local, ep, json.dumps(doc))
            started.append(time.monotonic())  # finished: [start, end]
            return result

        try:
            fut = asyncio.get_running_loop().run_in_executor(self._pool, work)
            result = await self._await(fut, started)
        except TimeoutError as e:
            return failed(str(e), compiled.revision, ENGINE)
        except Exception as e:  # engine errors of any kind deny
            return failed(f"{type(e).__name__}: {e}"[:300], compiled.revision, ENGINE)
        return parse_result(result, compiled.revision, ENGINE)

    async def _await(self, fut: asyncio.Future[Any], started: list[float]) -> Any:
        """Wait for an evaluation.  The timeout counts from when it starts running (time in
        the queue behind other evaluations is bounded separately), so load alone never turns
        into denials, while a hung evaluation still does."""
        queued_until = time.monotonic() + MAX_QUEUE_WAIT
        step = min(self._timeout, 0.25)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=step)
            if done:
                result = fut.result()
                if len(started) == 2 and started[1] - started[0] >= self._timeout:
                    raise TimeoutError(f"timed out after {self._timeout}s")  # finished too late
                return result
            now = time.monotonic()
            if started and now - started[0] >= self._timeout:
                fut.cancel()
                raise TimeoutError(f"timed out after {self._timeout}s")
            if not started and now > queued_until:
                fut.cancel()
                raise TimeoutError(f"the policy engine is overloaded (queued > {MAX_QUEUE_WAIT}s)")

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
