"""structlog set-up and the two events every request produces: ``access`` and ``decision``.

Configured once, at the edge (``__main__``/CLI).  JSON lines in production, a readable
console in development; ``request_id`` is bound per request through contextvars.  The standard
library's loggers (aiohttp's, asyncio's, warnings) go through the same renderer, so a JSON log
is JSON on every line; aiohttp's report of a request its parser refused is dropped there,
because the access event of that request (``proxy.serve``) says it in one line.

Decision sinks: an app registers callables (``add_decision_sink``) that receive every
``decision`` event as a dict (metrics, the admin API's records).  ``log_decision`` has no app
reference, so the request-context middleware binds the app's sinks into a contextvar for the
duration of the request (tasks started by the request inherit them).  A sink must be cheap and
must not block; one that raises is logged and never fails the request.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .decision import Decision, Subject

decisions_log = structlog.get_logger("airlock.decision")
access_log = structlog.get_logger("airlock.access")

# Set on a request by the request middleware once its access event is written; the runner's
# access logger (proxy.serve) writes one for every response without it (malformed requests).
ACCESS_LOGGED: web.RequestKey[bool] = web.RequestKey("airlock_access_logged", bool)

DecisionSink = Callable[[Mapping[str, Any]], None]
DECISION_SINKS: web.AppKey[list[DecisionSink]] = web.AppKey("decision_sinks")
_sinks: ContextVar[tuple[DecisionSink, ...]] = ContextVar("airlock_decision_sinks", default=())


def add_decision_sink(app: web.Application, sink: DecisionSink) -> None:
    """Have *sink* called with every decision event of *app*'s requests (before it starts)."""
    if DECISION_SINKS not in app:
        app[DECISION_SINKS] = []
    app[DECISION_SINKS].append(sink)


class _ParserErrors(logging.Filter):
    """Drops aiohttp's traceback for a request its parser refused (the access event has it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, HttpProcessingError)


def _route_stdlib(renderer: Any, level: int) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_ParserErrors())
    handler.set_name("airlock")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "airlock"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn output is a log record too


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    _route_stdlib(renderer, getattr(logging, level.upper(), logging.INFO))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def log_decision(subject: Subject, decision: Decision, *, outcome: str, **extra: Any) -> None:
    """One structured event per decided request."""
    reasons = decision.reasons
    if subject.action != "page" and subject.files:
        reasons = decision.file_reasons(subject.files[0].filename)
    event: dict[str, Any] = dict(
        ecosystem=subject.ecosystem,
        action=subject.action,
        target=subject.target,
        upstream=subject.upstream,
        client=subject.client.id,
        outcome=outcome,
        allow=decision.allow,
        enforced=decision.enforced,
        rules=sorted({r.rule for r in reasons}),
        reasons=[r.message for r in reasons],
        denied_files=len(decision.file_denials),
        warnings=[r.message for r in decision.warnings],
        monitored=[str(r) for r in decision.monitored],
        policy_revision=decision.revision[:12],
        engine=decision.engine,
        error=decision.error,
        **extra,
    )
    decisions_log.info("decision", **event)
    sinks = _sinks.get()
    if sinks:
        event["request_id"] = structlog.contextvars.get_contextvars().get("request_id")
        for sink in sinks:
            try:
                sink(event)
            except Exception as e:  # a sink (metrics, records) must never fail the request
                decisions_log.warning("decision_sink_failed", sink=repr(sink), error=str(e))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    app_sinks: list[DecisionSink] = request.app.get(DECISION_SINKS) or []
    sinks = _sinks.set(tuple(app_sinks))
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        resp.headers["X-Request-Id"] = request_id
        return resp
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        request[ACCESS_LOGGED] = True
        access_log.info(
            "access",
            method=request.method,
            path=request.rel_url.path_qs[:500],
            status=status,
            ms=round((time.perf_counter() - start) * 1000, 2),
            remote=request.remote,
        )
        structlog.contextvars.clear_contextvars()
        _sinks.reset(sinks)
