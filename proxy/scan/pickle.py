"""Pickle-family streams: plain pickles (protocol 0-5, several back to back), joblib dumps and
PyTorch's legacy stacked format.  Imports off the allow-list, unresolvable imports and anything
``pickle.load`` would choke on (truncation, unknown opcodes, trailing bytes) are findings.

Sniffing: a stream is treated as a pickle when its walk reaches STOP, or when it fails only
after importing something (``pickle.load`` would already have run that import, and maybe a call,
before failing - the "broken right after the payload" trick).  Callers that know a member must
be a pickle (``data.pkl`` of a torch archive) pass ``forced=True`` and get every error reported.
"""

from __future__ import annotations

from . import joblib, torch_legacy
from .allowlist import plausible_import
from .detect import PICKLE_OPCODES
from .model import Context
from .pickle_vm import Machine, Obj, PickleError, Trace
from .stream import Reader, Truncated


class StreamHooks:
    """Persistent ids (torch) and array wrappers (joblib) seen while walking one stream."""

    def __init__(self, r: Reader, trace: Trace) -> None:
        self.r = r
        self.trace = trace
        self.storages: dict[str, tuple[object, int]] = {}
        self.joblib = False

    def on_persid(self, pid: object) -> None:
        torch_legacy.record_persid(self.storages, pid)

    def on_build(self, obj: Obj, vm: Machine) -> None:
        if joblib.is_wrapper(obj):
            self.joblib = True
            joblib.read_array(obj, vm, self.walk)

    def walk(self) -> object:
        return Machine(self.r, self.trace, self).run()


def claims_pickle(trace: Trace, head: bytes) -> bool:
    """Whether a failed walk was a pickle: it starts with PROTO and a valid opcode (random bytes
    do that once in ~40,000 files), or it imported something ``pickle`` could import *and*
    completed a call (a text file starting ``c``/``i`` parses as an import, rarely as a call)."""
    if len(head) >= 3 and head[0] == 0x80 and head[1] <= 5 and head[2] in PICKLE_OPCODES:
        return True
    return trace.calls > 0 and any(
        plausible_import(module, name) for module, name, _ in trace.imports.values()
    )


def report_imports(ctx: Context, trace: Trace, location: str) -> None:
    for key, (module, name, offset) in trace.imports.items():
        if key.startswith("?ext"):
            ctx.add(
                "pickle-import",
                f"pickle imports copyreg extension {name[3:]} (resolved by the loading process)",
                location,
            )
        elif key.startswith("?"):
            ctx.add(
                "pickle-import",
                f"pickle imports a global computed at load time (offset {offset})",
                location,
            )
        elif not ctx.allow.allows(module, name):
            ctx.add(
                "pickle-import", f"pickle imports {module}.{name} (not on the allow-list)", location
            )


def scan_pickle(ctx: Context, r: Reader, location: str, *, forced: bool = False) -> str | None:
    """Scan a pickle-family stream from ``r``; the format label, or ``None`` if not a pickle.

    A stream that fails somewhere counts as a pickle only with evidence (see
    :func:`claims_pickle`); otherwise it is other data whose first bytes happened to parse.
    """
    trace = Trace({})
    hooks = StreamHooks(r, trace)
    label = "pickle"
    head = r.peek(3)
    error: str | None = None
    try:
        first = hooks.walk()
        if first == torch_legacy.MAGIC and type(first) is int:
            label = "pytorch-legacy"
            torch_legacy.read_stacked(r, hooks.walk, hooks.storages)
        while not r.at_eof():
            at = r.pos
            try:
                hooks.walk()
            except (PickleError, Truncated) as e:
                raise PickleError(f"data after a pickle is not a valid pickle ({e})", at) from e
    except (PickleError, Truncated) as e:
        error = str(e)
    if error is not None:
        if not forced and not claims_pickle(trace, head):
            return None
        ctx.add("pickle-malformed", f"pickle stream is malformed: {error}", location)
    report_imports(ctx, trace, location)
    return "joblib" if hooks.joblib else label


def scan_pickle_parts(ctx: Context, r: Reader, location: str, part: str) -> None:
    """A legacy torch tar member that interleaves pickles and raw data (``part`` = member name)."""
    trace = Trace({})
    hooks = StreamHooks(r, trace)
    try:
        if part == "storages":
            torch_legacy.read_tar_storages(r, hooks.walk)
        else:
            torch_legacy.read_tar_tensors(r, hooks.walk)
    except (PickleError, Truncated) as e:
        ctx.add("pickle-malformed", f"legacy torch {part} member is malformed: {e}", location)
    report_imports(ctx, trace, location)
