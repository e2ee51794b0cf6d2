"""A compact multimap from string keys to small integers, for the typo-squat deletion index.

The deletion neighbourhoods of 15,000 names are ~450,000 keys.  As a ``dict[str, list[int]]``
they took ~37 MB, a quarter of the proxy's resident memory.  Here each (key, id) pair is one
64-bit integer, ``hash(key)`` truncated to 43 bits above a 20-bit id, kept sorted in an
``array``: ~4 MB, looked up by bisection.  Two keys sharing a truncated hash give a spurious
candidate, never a lost one, and every caller verifies candidates (their real edit distance).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator

ID_BITS = 20
_ID_MASK = (1 << ID_BITS) - 1
_HASH_MASK = (1 << (63 - ID_BITS)) - 1


class KeyIndex:
    """Built once from (keys, id) groups; ``get(key)`` yields the ids filed under ``key``."""

    def __init__(self, groups: Iterable[tuple[Iterable[str], int]]) -> None:
        packed = array("q")
        for keys, ident in groups:
            if not 0 <= ident <= _ID_MASK:
                raise ValueError(f"id {ident} does not fit in {ID_BITS} bits")
            packed.extend(((hash(k) & _HASH_MASK) << ID_BITS) | ident for k in keys)
        self._packed = array("q", sorted(packed))  # deletes() gives a set: no duplicates

    def __len__(self) -> int:
        return len(self._packed)

    def __bool__(self) -> bool:
        return bool(self._packed)

    def get(self, key: str) -> Iterator[int]:
        prefix = hash(key) & _HASH_MASK
        packed = self._packed
        j = bisect_left(packed, prefix << ID_BITS)
        while j < len(packed) and packed[j] >> ID_BITS == prefix:
            yield packed[j] & _ID_MASK
            j += 1
