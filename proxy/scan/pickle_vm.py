"""A symbolic pickle machine: walks opcodes like ``pickle.load`` would, but never imports or calls.

It keeps the stack, the mark stack and the memo with *symbolic* values (small literals, globals,
call results), enough to resolve ``STACK_GLOBAL`` operands through the memo and to read the
persistent ids and array wrappers that torch legacy files and joblib dumps depend on.  Every
import is recorded; anything ``pickle`` itself would reject raises :class:`PickleError`.

Memory is bounded whatever the pickle: big strings are skipped, containers keep a bounded number
of items, the stack is capped, and the memo keeps at most ``MAX_MEMO_VALUES`` values (later ones
are remembered only as "set", so a GET yields an unknown value: STACK_GLOBAL on it is reported
as an unresolvable import, i.e. precision drops but nothing is ever missed).
"""

from __future__ import annotations

import struct

from .pickle_values import OPAQUE, Global, Hooks, Map, Obj, PickleError, Seq, Trace, _Opaque
from .stream import Reader, Truncated

__all__ = ["OPAQUE", "Global", "Hooks", "Machine", "Map", "Obj", "PickleError", "Seq", "Trace"]

MAX_LINE = 1 << 16
MAX_STACK = 1 << 19
MAX_MEMO_VALUES = 1 << 18
MAX_FAR_KEYS = 1 << 16
BITMAP_KEYS = 1 << 27
MAX_CELLS = 1 << 20
MAX_ITEMS = 1 << 16
MAX_IMPORTS = 1 << 12
KEEP = 1 << 12
"""Strings/bytes up to this size are kept verbatim; longer ones are skipped (value unknown)."""

_U1, _U2, _U4, _I4, _U8 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<i", "<Q"))
_F8 = struct.Struct(">d")


class Memo:
    """The unpickler's memo.  Values are kept while under ``MAX_MEMO_VALUES``; past that, new
    keys are only marked as set (a bitmap keeps ``count`` exact for MEMOIZE)."""

    __slots__ = ("_bits", "_count", "_far", "values")

    def __init__(self) -> None:
        self.values: dict[int, object] = {}
        self._bits: bytearray | None = None
        self._far: set[int] = set()
        self._count = 0

    @property
    def count(self) -> int:
        return len(self.values) if self._bits is None else self._count

    def has(self, i: int) -> bool:
        if self._bits is None or i in self.values:
            return i in self.values
        if i < BITMAP_KEYS:
            byte = i >> 3
            return byte < len(self._bits) and bool(self._bits[byte] >> (i & 7) & 1)
        return i in self._far

    def put(self, i: int, v: object) -> bool:
        """Store ``memo[i] = v``; False if a resource cap forbids a new key."""
        values = self.values
        if i in values or (self._bits is None and len(values) < MAX_MEMO_VALUES):
            values[i] = v
            return True
        if self._bits is None:  # value budget spent: from now on only remember which keys exist
            self._bits = bytearray()
            self._count = len(values)
            for key in values:
                self._mark(key)
        if self.has(i):
            return True
        if i >= BITMAP_KEYS and len(self._far) >= MAX_FAR_KEYS:
            return False
        self._mark(i)
        self._count += 1
        return True

    def _mark(self, i: int) -> None:
        assert self._bits is not None
        if i >= BITMAP_KEYS:
            self._far.add(i)
            return
        byte = i >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1, 2 * len(self._bits)) - len(self._bits)))
        self._bits[byte] |= 1 << (i & 7)


class Machine:
    """One pickle (PROTO ... STOP).  ``run`` returns the symbolic value STOP would return."""

    def __init__(self, r: Reader, trace: Trace, hooks: Hooks | None = None) -> None:
        self.r = r
        self.trace = trace
        self.hooks = hooks
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.floor = 0
        self.memo = Memo()
        self.frame_end: int | None = None

    # -- helpers -----------------------------------------------------------------------------
    def fail(self, message: str) -> PickleError:
        return PickleError(message, self.r.pos)

    def pop(self) -> object:
        if len(self.stack) <= self.floor:
            raise self.fail("stack underflow")
        return self.stack.pop()

    def top(self) -> object:
        if len(self.stack) <= self.floor:
            raise self.fail("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.marks:
            raise self.fail("could not find MARK")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        self.floor = self.marks[-1] if self.marks else 0
        return items

    def _u(self, s: struct.Struct) -> int:
        return int(self.r.unpack(s)[0])

    def _line(self) -> bytes:
        line = self.r.readline(MAX_LINE)
        if line is None:
            raise self.fail("unterminated or overlong text argument")
        return line[:-1]

    def _int_line(self) -> int:
        try:
            return int(self._line().rstrip(b"L"), 0)
        except ValueError:
            raise self.fail("invalid integer argument") from None

    def _blob(self, n: int) -> bytes | None:
        """``n`` argument bytes, or ``None`` (skipped) when they are too many to keep."""
        if n > KEEP:
            self.r.skip(n)
            return None
        return self.r.exact(n)

    def _collect(self, target: Seq | Map, items: list[object]) -> None:
        if isinstance(target, Map) and len(items) % 2:
            raise self.fail("odd number of items for a dict")
        room = min(MAX_ITEMS - len(target.items) * (2 if isinstance(target, Map) else 1),
                   MAX_CELLS - self.trace.cells)  # fmt: skip
        if len(items) > room:
            target.complete = False
            items = items[: max(0, room) & ~1]
        self.trace.cells += len(items)
        if isinstance(target, Map):
            target.items.extend(zip(items[::2], items[1::2], strict=True))
        else:
            target.items.extend(items)

    def _import(self, module: object, name: object, offset: int) -> object:
        imports = self.trace.imports
        if len(imports) >= MAX_IMPORTS:
            raise self.fail(f"more than {MAX_IMPORTS} distinct imports (resource exhaustion)")
        if isinstance(module, str) and isinstance(name, str):
            g = Global(module, name)
            imports.setdefault(g.dotted, (module, name, offset))
            return g
        if isinstance(module, Obj | _Opaque) or isinstance(name, Obj | _Opaque):
            imports.setdefault(f"?{offset}", ("?", "?", offset))
            return OPAQUE
        raise self.fail("STACK_GLOBAL requires str operands")

    def _memo_put(self, i: int) -> None:
        if not self.memo.put(i, self.top()):
            raise self.fail("too many sparse memo keys (resource exhaustion)")

    def _memo_get(self, i: int) -> None:
        memo = self.memo
        if i in memo.values:
            self.stack.append(memo.values[i])
        elif memo.has(i):
            self.stack.append(OPAQUE)  # stored after the value budget ran out
        else:
            raise self.fail(f"memo key {i} not found")

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> object:
        from .pickle_ops import TABLE

        r, stack = self.r, self.stack
        try:
            while True:
                if self.frame_end is not None and r.base + r.off >= self.frame_end:
                    if r.base + r.off > self.frame_end:
                        raise self.fail("opcode crosses the end of its frame")
                    self.frame_end = None
                off = r.off
                if off < len(r.buf):
                    c = r.buf[off]
                    r.off = off + 1
                else:
                    try:
                        c = r.byte()
                    except Truncated:
                        raise PickleError("stream ends before STOP (truncated)", r.pos) from None
                if c == 0x2E:  # STOP
                    value = self.pop()
                    if self.frame_end is not None and r.pos < self.frame_end:
                        raise self.fail("STOP before the end of the frame")
                    return value
                handler = TABLE[c]
                if handler is None:
                    raise PickleError(f"unknown opcode 0x{c:02x}", r.pos - 1)
                handler(self)
                if len(stack) > MAX_STACK:
                    raise self.fail(f"stack deeper than {MAX_STACK} (resource exhaustion)")
        except Truncated as e:
            raise self.fail(f"truncated ({e})") from None
