"""Opcode handlers of the symbolic pickle machine, one function per opcode family, and the
dispatch table.  Handlers run after the opcode byte was read; ``vm.r.pos - 1`` is its offset.
The frequent opcodes (memo, short strings, small ints, tuples, dict/list filling) are written
out by hand: the walker's speed is dominated by them."""

from __future__ import annotations

import codecs
import functools
import struct
from collections.abc import Callable

from .pickle_vm import KEEP, OPAQUE, Machine, Map, Obj, Seq

Handler = Callable[[Machine], None]

_U1, _U2, _U4, _I4, _U8 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<i", "<Q"))
_F8 = struct.Struct(">d")


def proto(vm: Machine) -> None:
    if vm.r.byte() > 5:
        raise vm.fail("unsupported protocol")


def frame(vm: Machine) -> None:
    n = vm._u(_U8)
    if vm.frame_end is not None:
        raise vm.fail("new frame before the end of the current one")
    if vm.r.size is not None and vm.r.pos + n > vm.r.size:
        raise vm.fail("frame runs past the end of the data")
    vm.frame_end = vm.r.pos + n


def int_text(vm: Machine) -> None:  # INT; "I00"/"I01" are the protocol-0 booleans
    nxt = vm.r.peek(3)
    if nxt in (b"00\n", b"01\n"):
        vm.r.skip(3)
        vm.stack.append(nxt == b"01\n")
    else:
        vm.stack.append(vm._int_line())


def long_text(vm: Machine) -> None:
    vm.stack.append(vm._int_line())


def long_bin(size: struct.Struct, vm: Machine) -> None:  # LONG1, LONG4
    n = vm._u(size)
    if n < 0:
        raise vm.fail("negative byte count")
    data = vm._blob(n)
    vm.stack.append(OPAQUE if data is None else int.from_bytes(data, "little", signed=True))


def float_text(vm: Machine) -> None:
    try:
        vm.stack.append(float(vm._line()))
    except ValueError:
        raise vm.fail("invalid float argument") from None


def binint1(vm: Machine) -> None:
    vm.stack.append(vm.r.byte())


def number(size: struct.Struct, vm: Machine) -> None:  # BININT2, BININT, BINFLOAT
    vm.stack.append(vm.r.unpack(size)[0])


def short_binunicode(vm: Machine) -> None:
    r = vm.r
    n = r.byte()
    end = r.off + n
    if end <= len(r.buf):
        data = r.buf[r.off : end]
        r.off = end
    else:
        data = r.exact(n)
    try:
        vm.stack.append(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise vm.fail("invalid UTF-8 in string") from None


def binunicode(size: struct.Struct, vm: Machine) -> None:
    data = vm._blob(vm._u(size))
    if data is None:
        vm.stack.append(OPAQUE)
        return
    try:
        vm.stack.append(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise vm.fail("invalid UTF-8 in string") from None


def unicode_text(vm: Machine) -> None:
    vm.stack.append(vm._line().decode("raw-unicode-escape", "replace"))


def binstring(size: struct.Struct, vm: Machine) -> None:  # SHORT_BINSTRING, BINSTRING
    n = vm._u(size)
    if n < 0:
        raise vm.fail("negative byte count")
    data = vm._blob(n)
    vm.stack.append(OPAQUE if data is None else data.decode("latin-1"))


def string_text(vm: Machine) -> None:
    raw = vm._line().rstrip()
    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b'"', b"'"):
        raise vm.fail("STRING argument must be quoted")
    try:
        vm.stack.append(codecs.escape_decode(raw[1:-1])[0].decode("latin-1"))
    except ValueError:
        raise vm.fail("invalid STRING escape") from None


def binbytes(size: struct.Struct, vm: Machine) -> None:  # (SHORT_)BINBYTES(8), BYTEARRAY8
    data = vm._blob(vm._u(size))
    vm.stack.append(OPAQUE if data is None else data)


def push(make: Callable[[], object], vm: Machine) -> None:
    vm.stack.append(make())


def mark(vm: Machine) -> None:
    vm.floor = len(vm.stack)
    vm.marks.append(vm.floor)


def pop(vm: Machine) -> None:
    if len(vm.stack) > vm.floor:
        vm.stack.pop()
    else:
        vm.pop_mark()


def pop_mark(vm: Machine) -> None:
    vm.pop_mark()


def dup(vm: Machine) -> None:
    vm.stack.append(vm.top())


def readonly_buffer(vm: Machine) -> None:
    vm.top()


def tuple_n(k: int, vm: Machine) -> None:
    stack = vm.stack
    if len(stack) - k < vm.floor:
        raise vm.fail("stack underflow")
    items = tuple(stack[len(stack) - k :])
    del stack[len(stack) - k :]
    stack.append(items)


def tuple_mark(vm: Machine) -> None:
    items = vm.pop_mark()
    vm.stack.append(tuple(items) if len(items) <= 64 else OPAQUE)


def seq(kind: str, vm: Machine) -> None:  # LIST, FROZENSET
    s = Seq(kind)
    vm._collect(s, vm.pop_mark())
    vm.stack.append(s)


def dict_mark(vm: Machine) -> None:
    m = Map()
    vm._collect(m, vm.pop_mark())
    vm.stack.append(m)


def extend(k: int, vm: Machine) -> None:  # APPEND (1), SETITEM (2), marked ones (-1)
    if k < 0:
        items = vm.pop_mark()
    else:
        stack = vm.stack
        if len(stack) - k < vm.floor:
            raise vm.fail("stack underflow")
        items = stack[len(stack) - k :]
        del stack[len(stack) - k :]
    target = vm.top()
    if isinstance(target, Seq | Map):
        vm._collect(target, items)


def get(size: struct.Struct | None, vm: Machine) -> None:
    vm._memo_get(vm._int_line() if size is None else vm._u(size))


def binget(vm: Machine) -> None:
    i = vm.r.byte()
    values = vm.memo.values
    if i in values:
        vm.stack.append(values[i])
    else:
        vm._memo_get(i)


def put(size: struct.Struct | None, vm: Machine) -> None:
    i = vm._int_line() if size is None else vm._u(size)
    if i < 0:
        raise vm.fail("negative memo key")
    vm._memo_put(i)


def binput(vm: Machine) -> None:
    vm._memo_put(vm.r.byte())


def memoize(vm: Machine) -> None:
    memo = vm.memo
    if not vm.stack or len(vm.stack) <= vm.floor:
        raise vm.fail("stack underflow")
    if not memo.put(memo.count, vm.stack[-1]):
        raise vm.fail("too many memo keys (resource exhaustion)")


def global_text(vm: Machine) -> None:
    offset = vm.r.pos - 1
    module = vm._line().decode("utf-8", "replace")
    name = vm._line().decode("utf-8", "replace")
    vm.stack.append(vm._import(module, name, offset))


def stack_global(vm: Machine) -> None:
    name = vm.pop()
    vm.stack.append(vm._import(vm.pop(), name, vm.r.pos - 1))


def ext(size: struct.Struct, vm: Machine) -> None:
    offset = vm.r.pos - 1
    code = vm._u(size)
    vm.trace.imports.setdefault(f"?ext{code}", ("?", f"ext{code}", offset))
    vm.stack.append(OPAQUE)


def inst(vm: Machine) -> None:
    offset = vm.r.pos - 1
    module = vm._line().decode("utf-8", "replace")
    name = vm._line().decode("utf-8", "replace")
    cls = vm._import(module, name, offset)
    args = tuple(vm.pop_mark())
    vm.trace.calls += 1
    vm.stack.append(Obj(cls, args))


def obj(vm: Machine) -> None:
    items = vm.pop_mark()
    if not items:
        raise vm.fail("OBJ without a class")
    vm.trace.calls += 1
    vm.stack.append(Obj(items[0], tuple(items[1:])))


def reduce(extra: int, vm: Machine) -> None:  # REDUCE/NEWOBJ (0), NEWOBJ_EX (1: kwargs)
    for _ in range(extra):
        vm.pop()
    args = vm.pop()
    func = vm.pop()
    vm.trace.calls += 1
    vm.stack.append(Obj(func, args))


def build(vm: Machine) -> None:
    state = vm.pop()
    target = vm.top()
    vm.trace.calls += 1
    if isinstance(target, Obj):
        target.state = state
        if vm.hooks is not None:
            vm.hooks.on_build(target, vm)


def persid(binary: bool, vm: Machine) -> None:
    pid = vm.pop() if binary else vm._line().decode("ascii", "replace")
    if vm.hooks is not None:
        vm.hooks.on_persid(pid)
    vm.stack.append(Obj(OPAQUE, pid))


def _table() -> list[Handler | None]:
    p = functools.partial
    ops: dict[int, Handler] = {
        0x80: proto, 0x95: frame, 0x49: int_text, 0x4C: long_text, 0x46: float_text,
        0x56: unicode_text, 0x53: string_text, 0x28: mark, 0x30: pop, 0x31: pop_mark,
        0x32: dup, 0x98: readonly_buffer, 0x64: dict_mark, 0x94: memoize, 0x63: global_text,
        0x93: stack_global, 0x69: inst, 0x6F: obj, 0x62: build, 0x4B: binint1,
        0x4D: p(number, _U2), 0x4A: p(number, _I4), 0x47: p(number, _F8),
        0x7D: p(push, Map), 0x4E: p(push, lambda: None), 0x88: p(push, lambda: True),
        0x89: p(push, lambda: False), 0x97: p(push, lambda: OPAQUE),
        0x5D: p(push, lambda: Seq("list")), 0x8F: p(push, lambda: Seq("set")),
        0x6C: p(seq, "list"), 0x91: p(seq, "frozenset"),
        0x29: p(tuple_n, 0), 0x85: p(tuple_n, 1), 0x86: p(tuple_n, 2), 0x87: p(tuple_n, 3),
        0x74: tuple_mark, 0x61: p(extend, 1), 0x73: p(extend, 2), 0x65: p(extend, -1),
        0x75: p(extend, -1), 0x90: p(extend, -1),
        0x8A: p(long_bin, _U1), 0x8B: p(long_bin, _I4),
        0x8C: short_binunicode, 0x58: p(binunicode, _U4), 0x8D: p(binunicode, _U8),
        0x55: p(binstring, _U1), 0x54: p(binstring, _I4),
        0x43: p(binbytes, _U1), 0x42: p(binbytes, _U4), 0x8E: p(binbytes, _U8),
        0x96: p(binbytes, _U8),
        0x67: p(get, None), 0x68: binget, 0x6A: p(get, _U4),
        0x70: p(put, None), 0x71: binput, 0x72: p(put, _U4),
        0x82: p(ext, _U1), 0x83: p(ext, _U2), 0x84: p(ext, _I4),
        0x52: p(reduce, 0), 0x81: p(reduce, 0), 0x92: p(reduce, 1),
        0x50: p(persid, False), 0x51: p(persid, True),
    }  # fmt: skip
    table: list[Handler | None] = [None] * 256
    for code, handler in ops.items():
        table[code] = handler
    return table


TABLE = _table()
assert KEEP > 255  # short strings are always kept verbatim
