"""SizedLru: bounded by entries and by the size each value reports."""

from __future__ import annotations

import pytest

from proxy.lru import SizedLru


def test_size_bound_evicts_the_least_recently_used() -> None:
    lru: SizedLru[str, list[int]] = SizedLru(100, max_size=10, size=len)
    lru.put("a", [0] * 4)
    lru.put("b", [0] * 4)
    assert lru.get("a") == [0] * 4  # a is now the most recent
    lru.put("c", [0] * 4)  # 12 > 10: b goes, not a
    assert ("a" in lru, "b" in lru, "c" in lru) == (True, False, True)
    assert lru.size == 8


def test_entry_bound_and_replacing_a_value_updates_the_size() -> None:
    lru: SizedLru[str, list[int]] = SizedLru(2, max_size=1000, size=len)
    lru.put("a", [1])
    lru.put("b", [1])
    lru.put("a", [1, 2, 3])  # replaced, and most recent
    assert lru.size == 4
    assert len(lru) == 2
    lru.put("c", [])
    assert ("a" in lru, "b" in lru, "c" in lru) == (True, False, True)
    assert lru.size == 3


def test_the_newest_entry_stays_even_alone_over_the_bound() -> None:
    lru: SizedLru[str, list[int]] = SizedLru(10, max_size=5, size=len)
    lru.put("small", [1])
    lru.put("huge", [0] * 50)
    assert list(lru.peek(k) is not None for k in ("small", "huge")) == [False, True]
    assert lru.size == 50


def test_peek_does_not_change_recency() -> None:
    lru: SizedLru[str, int] = SizedLru(2, max_size=100, size=lambda v: 1)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.peek("a") == 1
    assert lru.get("missing") is None
    lru.put("c", 3)  # a was only peeked: it is still the oldest
    assert ("a" in lru, "b" in lru, "c" in lru) == (False, True, True)


def test_without_a_size_only_entries_are_bounded_and_pop_forgets() -> None:
    lru: SizedLru[str, str] = SizedLru(2)
    lru.put("a", "x" * 1000)
    lru.put("b", "y" * 1000)
    assert lru["a"] == "x" * 1000  # indexing does not touch recency either
    lru.put("c", "z")
    assert ("a" in lru, "b" in lru, "c" in lru) == (False, True, True)
    assert lru.size == 0
    assert lru.pop("b") == "y" * 1000
    assert lru.pop("b") is None
    assert len(lru) == 1
    with pytest.raises(KeyError):
        _ = lru["b"]
