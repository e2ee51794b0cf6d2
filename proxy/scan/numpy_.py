"""NumPy ``.npy`` headers.  Object arrays are pickles (``np.load(allow_pickle=True)`` runs them),
so any object dtype is a finding and its pickle payload is walked for imports as well.  The
header is a Python literal parsed with :func:`ast.literal_eval` (never ``eval``); a header we
cannot parse or a dtype we cannot prove numeric is a finding (fail closed).
"""

from __future__ import annotations

import ast
import re
import struct

from .model import Context
from .pickle import scan_pickle
from .stream import Reader, Truncated

MAX_HEADER = 1 << 20
_SIMPLE = re.compile(r"[<>|=]?(?:[?bBhHiIlLqQpPeEfdgFDGuifcSUVaMm]\d*(?:\[\w+\])?)")
_PY2_LONG = re.compile(r"\b(\d+)L\b")
_NAMED = frozenset(
    {"bool", "float16", "float32", "float64", "complex64", "complex128"}
    | {f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)}
)


def _numeric(descr: object, depth: int = 0) -> bool:
    """Whether a ``descr`` (string or structured list) contains no object field."""
    if depth > 32:
        return False
    if isinstance(descr, str):
        return descr in _NAMED or _SIMPLE.fullmatch(descr) is not None
    if isinstance(descr, list):
        for field in descr:
            if not isinstance(field, tuple) or len(field) not in (2, 3):
                return False
            if not _numeric(field[1], depth + 1):
                return False
        return True
    return False


def scan_npy(ctx: Context, r: Reader, location: str) -> str:
    try:
        magic = r.exact(8)
        major = magic[6]
        if major == 1:
            (n,) = struct.unpack("<H", r.exact(2))
        elif major in (2, 3):
            (n,) = struct.unpack("<I", r.exact(4))
        else:
            ctx.add("numpy-malformed", f"unsupported .npy version {major}", location)
            return "npy"
        if n > MAX_HEADER:
            ctx.add("numpy-malformed", f".npy header of {n} bytes", location)
            return "npy"
        text = r.exact(n).decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(_PY2_LONG.sub(r"\1", text))  # Python 2 headers say "3L"
    except (Truncated, ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        ctx.add("numpy-malformed", ".npy header cannot be parsed", location)
        return "npy"
    descr = header.get("descr") if isinstance(header, dict) else None
    if descr is None:
        ctx.add("numpy-malformed", ".npy header has no dtype", location)
    elif not _numeric(descr):
        ctx.add(
            "numpy-object",
            f".npy array has dtype {str(descr)[:80]} (object arrays are pickles)",
            location,
        )
        scan_pickle(ctx, r, location, forced=True)
    return "npy"
