"""safetensors: only the header is read.  It must be a JSON object without duplicate keys whose
tensors have known dtypes, non-negative integer shapes and byte ranges that exactly tile the
data section (sorted by offset: no gaps, no overlaps, sizes matching dtype x shape) up to the
end of the file.  Loaders trust these offsets, so anything else is a ``safetensors-header`` finding.
"""

from __future__ import annotations

import json
import math
import struct

from .detect import SAFETENSORS_MAX_HEADER
from .model import Context
from .stream import Reader, Truncated

BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
    "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
MAX_SCANNED_HEADER = 32 << 20


class HeaderError(Exception):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise HeaderError(f"duplicate key {k[:80]!r}")
        out[k] = v
    return out


def _constant(name: str) -> object:
    raise HeaderError(f"non-standard JSON constant {name}")


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_header(header: dict[str, object], data_size: int) -> None:
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise HeaderError("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict):
            raise HeaderError(f"tensor {name[:80]!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in BITS:
            raise HeaderError(f"tensor {name[:80]!r} has unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(_int(d) for d in shape):
            raise HeaderError(f"tensor {name[:80]!r} has an invalid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_int(o) for o in offsets)):
            raise HeaderError(f"tensor {name[:80]!r} has invalid data_offsets")
        begin, end = offsets
        if begin > end or end > data_size:
            raise HeaderError(f"tensor {name[:80]!r} spans [{begin}, {end}) outside the data")
        bits = math.prod(shape) * BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            raise HeaderError(
                f"tensor {name[:80]!r} needs {bits / 8:g} bytes but spans {end - begin}"
            )
        spans.append((begin, end, name))
    spans.sort()
    expected = 0
    for begin, end, name in spans:
        if begin != expected:
            kind = "overlaps the previous tensor" if begin < expected else "leaves a gap"
            raise HeaderError(f"tensor {name[:80]!r} {kind} (offset {begin}, expected {expected})")
        expected = end
    if expected != data_size:
        raise HeaderError(f"tensors cover {expected} bytes but the data section has {data_size}")


def scan_safetensors(ctx: Context, r: Reader, location: str) -> str:
    try:
        (n,) = struct.unpack("<Q", r.exact(8))
        if n > SAFETENSORS_MAX_HEADER:
            raise HeaderError(f"header of {n} bytes exceeds the format's limit")
        if n > MAX_SCANNED_HEADER:
            raise HeaderError(f"header of {n} bytes exceeds the scanner's limit")
        raw = r.exact(n)
        size = r.size
        if size is None:  # a decompressed stream: count the rest
            while r.read(1 << 20):
                pass
            size = r.pos
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_constant)
        if not isinstance(header, dict):
            raise HeaderError("header is not a JSON object")
        check_header(header, size - 8 - n)
    except Truncated:
        ctx.add("safetensors-header", "file ends inside the header", location)
    except (HeaderError, UnicodeDecodeError, RecursionError) as e:
        ctx.add("safetensors-header", f"invalid safetensors header: {e}", location)
    except json.JSONDecodeError as e:
        ctx.add("safetensors-header", f"header is not valid JSON ({e.msg})", location)
    return "safetensors"
