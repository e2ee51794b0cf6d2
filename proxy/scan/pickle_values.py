"""Symbolic values of the pickle machine (what a pickle *would* build, without building it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .pickle_vm import Machine


class PickleError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Global:
    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


class _Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "OPAQUE"


OPAQUE = _Opaque()
"""A value the machine does not track (large string, dropped container item, buffer...)."""


class Obj:
    """Result of REDUCE/NEWOBJ/OBJ/INST: ``func(*args)``, plus the state a BUILD gave it."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: object, args: object) -> None:
        self.func = func
        self.args = args
        self.state: object = None


class Seq:
    """A list, set or frozenset (tuples are plain Python tuples)."""

    __slots__ = ("complete", "items", "kind")

    def __init__(self, kind: str, items: list[object] | None = None) -> None:
        self.kind = kind
        self.items: list[object] = items if items is not None else []
        self.complete = True


class Map:
    __slots__ = ("complete", "items")

    def __init__(self) -> None:
        self.items: list[tuple[object, object]] = []
        self.complete = True

    def get(self, key: str) -> object:
        for k, v in self.items:
            if k == key:
                return v
        return None


class Hooks(Protocol):
    def on_persid(self, pid: object) -> None: ...

    def on_build(self, obj: Obj, vm: Machine) -> None: ...


@dataclass(slots=True)
class Trace:
    """What a walk saw, shared by all pickles of one stream."""

    imports: dict[str, tuple[str, str, int]]
    """dotted name -> (module, name, first offset); ``?...`` keys for unresolvable imports."""
    calls: int = 0
    cells: int = 0
