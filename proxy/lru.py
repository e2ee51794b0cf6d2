"""An LRU map bounded by entries and, optionally, by a size each value reports (files of a
page, bytes): the in-memory caches of pages, decisions, renders and known digests.

Project pages range from one file to thousands, so a count of pages alone does not bound
memory: a few hundred of the largest pages are hundreds of megabytes of parsed objects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SizedLru(Generic[K, V]):
    """Evicts least recently used entries while over either bound; the newest entry always
    stays, even alone over the size bound (it is in use)."""

    def __init__(
        self,
        max_entries: int,
        *,
        max_size: int | None = None,
        size: Callable[[V], int] | None = None,
    ) -> None:
        """Without ``size`` only the number of entries is bounded."""
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._max_entries = max_entries
        self._max_size = max_size if size is not None and max_size is not None else None
        self._size_of = size
        self.size = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: K) -> V:
        """The value without touching its recency; KeyError if absent."""
        return self._items[key][0]

    def get(self, key: K) -> V | None:
        """The value, marked as recently used; None if absent."""
        hit = self._items.get(key)
        if hit is None:
            return None
        self._items.move_to_end(key)
        return hit[0]

    def peek(self, key: K) -> V | None:
        """The value without touching its recency."""
        hit = self._items.get(key)
        return None if hit is None else hit[0]

    def pop(self, key: K) -> V | None:
        """Remove and return the value; None if absent."""
        hit = self._items.pop(key, None)
        if hit is None:
            return None
        self.size -= hit[1]
        return hit[0]

    def put(self, key: K, value: V) -> V:
        """Insert or replace, as the most recent entry; evict the oldest while over a bound."""
        self.pop(key)
        n = self._size_of(value) if self._size_of is not None else 0
        self._items[key] = (value, n)
        self.size += n
        while len(self._items) > 1 and (
            len(self._items) > self._max_entries
            or (self._max_size is not None and self.size > self._max_size)
        ):
            _, (_, evicted) = self._items.popitem(last=False)
            self.size -= evicted
        return value
