"""KeyIndex: the compact multimap behind the typo-squat deletion index."""

from __future__ import annotations

import random

import pytest

from proxy.facts.keyindex import ID_BITS, KeyIndex
from proxy.facts.names import deletes


def test_every_key_finds_every_id_filed_under_it() -> None:
    rnd = random.Random(3)
    words = {
        "".join(rnd.choice("abcdefgh-") for _ in range(rnd.randint(3, 12))) for _ in range(3000)
    }
    names = sorted(words)
    index = KeyIndex((deletes(n, 1), i) for i, n in enumerate(names))
    expected: dict[str, set[int]] = {}
    for i, n in enumerate(names):
        for key in deletes(n, 1):
            expected.setdefault(key, set()).add(i)
    assert len(index) == sum(len(v) for v in expected.values())
    extras = 0
    for key, ids in expected.items():
        found = list(index.get(key))
        assert set(found) >= ids
        extras += len(found) - len(ids)
    assert extras <= 2  # only keys whose 43-bit hashes collide (odds ~1e-4 here) add any
    assert list(index.get("zzzzzzzzzzzz")) == []


def test_an_empty_index_is_false_and_ids_must_fit() -> None:
    assert not KeyIndex([])
    assert list(KeyIndex([]).get("a")) == []
    with pytest.raises(ValueError, match="does not fit"):
        KeyIndex([(["a"], 1 << ID_BITS)])
    with pytest.raises(ValueError, match="does not fit"):
        KeyIndex([(["a"], -1)])
