"""GGUF: walk the metadata and tensor table with bounds checks, and vet chat templates.

``tokenizer.chat_template`` (and the named ``tokenizer.chat_template.*`` variants) are Jinja
templates that several runtimes have rendered outside a sandbox (CVE-2024-34359, CVE-2026-5760);
a template using sandbox-escape constructs is a ``gguf-template`` finding.  Counts, lengths,
tensor dimensions and offsets are checked against the file so a malformed file (the usual
way into loader memory bugs) is a ``gguf-malformed`` finding.  Tensor data is never read.
"""

from __future__ import annotations

import math
import struct

from .model import Context
from .stream import Reader, Truncated
from .template import MAX_TEMPLATE, template_escapes

_SCALAR = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
MAX_KEY = 1 << 16
MAX_COUNT = 1 << 24
MAX_DIMS = 4
TEMPLATE_KEY = "tokenizer.chat_template"
# ggml type id -> (block size, bytes per block), as in ggml's type traits
GGML_TYPES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip


class GGUFError(Exception):
    pass


class _Parser:
    def __init__(self, ctx: Context, r: Reader, location: str) -> None:
        self.ctx, self.r, self.location = ctx, r, location
        self.endian = "<"
        self.wide = True  # v2+: 64-bit counts and lengths
        self.alignment = 32

    def num(self, fmt: str) -> int:
        return int(struct.unpack(self.endian + fmt, self.r.exact(struct.calcsize(fmt)))[0])

    def count(self) -> int:
        return self.num("Q" if self.wide else "I")

    def string(self, keep: int) -> str | None:
        n = self.count()
        if n > keep:
            self.r.skip(n)
            return None
        return self.r.exact(n).decode("utf-8", "replace")

    def value(self, vtype: int, depth: int = 0) -> object:
        if vtype in _SCALAR:
            return self.num(_SCALAR[vtype])
        if vtype == _STRING:
            self.r.skip(self.count())
            return None
        if vtype != _ARRAY or depth > 2:
            raise GGUFError(f"unknown value type {vtype}")
        etype, n = self.num("I"), self.count()
        if n > MAX_COUNT:
            raise GGUFError(f"array of {n} items")
        if etype in _SCALAR:
            self.r.skip(n * struct.calcsize(_SCALAR[etype]))
        else:
            for _ in range(n):
                self.value(etype, depth + 1)
        return None

    def run(self) -> None:
        r = self.r
        r.exact(4)
        version = struct.unpack("<I", r.exact(4))[0]
        if version not in (1, 2, 3):
            version = struct.unpack(">I", struct.pack("<I", version))[0]
            if version not in (2, 3):
                raise GGUFError(f"unsupported version {version}")
            self.endian = ">"
        self.wide = version >= 2
        n_tensors, n_kv = self.count(), self.count()
        if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
            raise GGUFError(f"{n_tensors} tensors / {n_kv} metadata entries")
        for _ in range(n_kv):
            key = self.string(MAX_KEY)
            if key is None:
                raise GGUFError("overlong metadata key")
            vtype = self.num("I")
            if vtype == _STRING and key.startswith(TEMPLATE_KEY):
                self.template(key)
            elif key == "general.alignment" and vtype == 4:
                self.alignment = self.num("I")
                if self.alignment <= 0 or self.alignment & (self.alignment - 1):
                    raise GGUFError(f"alignment {self.alignment} is not a power of two")
            else:
                self.value(vtype)
        self.tensors(n_tensors)

    def template(self, key: str) -> None:
        text = self.string(MAX_TEMPLATE)
        reasons = [f"a template over {MAX_TEMPLATE} bytes"] if text is None else []
        reasons += template_escapes(text or "")
        for reason in reasons:
            self.ctx.add("gguf-template", f"{key} uses {reason}", self.location)

    def tensors(self, n: int) -> None:
        infos: list[tuple[str, int, int]] = []
        for _ in range(n):
            name = self.string(MAX_KEY) or "?"
            n_dims = self.num("I")
            if n_dims > MAX_DIMS:
                raise GGUFError(f"tensor {name[:64]!r} has {n_dims} dimensions")
            dims = [self.num("Q") for _ in range(n_dims)]
            ggml_type, offset = self.num("I"), self.num("Q")
            if offset % self.alignment:
                raise GGUFError(f"tensor {name[:64]!r} offset {offset} is misaligned")
            traits = GGML_TYPES.get(ggml_type)
            numel = math.prod(dims)
            if numel >= 1 << 63:
                raise GGUFError(f"tensor {name[:64]!r} has {numel} elements")
            if traits is not None:
                block, block_bytes = traits
                if dims and dims[0] % block:
                    raise GGUFError(f"tensor {name[:64]!r} rows do not fill whole blocks")
                infos.append((name, offset, numel // block * block_bytes))
        r = self.r
        data_start = -(-r.pos // self.alignment) * self.alignment
        size = r.size
        if size is None:
            while r.read(1 << 20):
                pass
            size = r.pos
        for name, offset, nbytes in infos:
            if data_start + offset + nbytes > size:
                raise GGUFError(f"tensor {name[:64]!r} runs past the end of the file")


def scan_gguf(ctx: Context, r: Reader, location: str) -> str:
    try:
        _Parser(ctx, r, location).run()
    except Truncated as e:
        ctx.add("gguf-malformed", f"GGUF file is truncated ({e})", location)
    except GGUFError as e:
        ctx.add("gguf-malformed", f"GGUF file is malformed: {e}", location)
    return "gguf"
