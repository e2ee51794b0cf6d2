"""ONNX models: a minimal protobuf walk (no ``onnx``/``protobuf`` dependency).

A file is ONNX when it parses, to its last byte, as a protobuf message with a varint field 1
(``ir_version``) and a message field 7 (``graph``), which is exactly what a protobuf parser would
accept.  Every ``TensorProto`` reachable from the graph (initializers, sparse initializers,
node attributes, subgraphs, functions, training info) is checked for ``external_data``
locations that are absolute or climb out of the model folder with ``..``
(``onnx-external-path``).  Tensor payloads are skipped, never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Context
from .stream import Reader, Truncated

MAX_DEPTH = 48
MAX_STRING = 1 << 16

# message kind -> {field number: child message kind}; every other field is skipped.
_SCHEMA: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "function": {7: "node"},
    "training": {1: "graph", 2: "graph"},
    "tensor": {},
    "entry": {},
}


class NotOnnx(Exception):
    pass


@dataclass(slots=True)
class _Walk:
    r: Reader
    problems: list[str] = field(default_factory=list)

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.r.exact(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise NotOnnx("varint too long")

    def message(self, kind: str, end: int, depth: int) -> dict[int, object]:
        """Walk fields up to ``end``; returns the varints and short strings of tensors/entries."""
        if depth > MAX_DEPTH:
            raise NotOnnx("messages nest too deeply")
        children = _SCHEMA[kind]
        seen: dict[int, object] = {}
        locations: list[str] = []
        while self.r.pos < end:
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise NotOnnx("field number 0")
            if wire == 0:
                seen[number] = self.varint()
            elif wire == 1:
                self.r.skip(8)
            elif wire == 5:
                self.r.skip(4)
            elif wire == 2:
                n = self.varint()
                stop = self.r.pos + n
                if stop > end:
                    raise NotOnnx("field runs past its message")
                if number in children:
                    self.message(children[number], stop, depth + 1)
                    seen.setdefault(number, None)
                elif kind == "tensor" and number == 13:  # external_data entries
                    entry = self.message("entry", stop, depth + 1)
                    if entry.get(1) == "location" and isinstance(entry.get(2), str):
                        locations.append(str(entry[2]))
                elif kind == "entry" and n <= MAX_STRING:
                    seen[number] = self.r.exact(n).decode("utf-8", "replace")
                elif kind == "entry":
                    self.r.skip(n)
                    seen[number] = "\x00(overlong)"  # never a safe location
                else:
                    self.r.skip(n)
            else:
                raise NotOnnx(f"wire type {wire}")
        if self.r.pos != end:
            raise NotOnnx("message overruns its length")
        for location in locations:
            if _escapes(location):
                self.problems.append(location)
        return seen


def _escapes(location: str) -> bool:
    norm = location.replace("\\", "/")
    return (
        norm.startswith("/")
        or (len(norm) > 1 and norm[1] == ":")
        or ".." in norm.split("/")
        or "\x00" in norm
        or "://" in norm
    )


def scan_onnx(ctx: Context, r: Reader, location: str) -> str | None:
    """Findings for an ONNX model, or ``None`` (nothing reported) if the data is not ONNX."""
    walk = _Walk(r)
    size = r.size
    try:
        if size is None:
            raise NotOnnx("size unknown")
        top = walk.message("model", size, 0)
    except (NotOnnx, Truncated):
        return None
    if not isinstance(top.get(1), int) or 7 not in top:
        return None
    for bad in dict.fromkeys(walk.problems):
        ctx.add(
            "onnx-external-path",
            f"tensor data is loaded from {bad[:120]!r}, outside the model folder",
            location,
        )
    return "onnx"
