"""Name-only baselines for ``airlock facts evaluate``: what simpler published detectors catch.

Both flag a name outright (no history, no scores), so their flags are their denials:

* ``warehouse-style``: the checks of PyPI's own typo-squat warning at registration, against
  the 1,000 most downloaded names: a doubled character removed, a character inserted, two
  adjacent characters swapped, words re-ordered, a trailing version number dropped, and
  the common look-alike digits (1/l/i, 0/o).
* ``GuardDog-style``: Damerau-Levenshtein distance 1, a py/python affix swapped, added or
  dropped, and words re-ordered, against the 5,000 most downloaded names.

They are re-implementations from the published descriptions, for comparison only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .compound import py_stripped
from .names import deletes, osa_distance

Baseline = Callable[[str], bool]
_VERSION = re.compile(r"-?v?\d+$")
_LOOKALIKE = str.maketrans({"1": "l", "0": "o"})


def _by_rank(ranks: Mapping[str, int], top: int) -> set[str]:
    return {n for n, r in ranks.items() if r <= top}


def warehouse_style(ranks: Mapping[str, int], top: int = 1000) -> Baseline:
    corpus = _by_rank(ranks, top)
    words = {"-".join(sorted(n.split("-"))) for n in corpus if "-" in n}

    def check(name: str) -> bool:
        if name in corpus:
            return False
        n = len(name)
        repeated = (name[:i] + name[i + 1 :] for i in range(n - 1) if name[i] == name[i + 1])
        swapped = (name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(n - 1))
        if any(c in corpus for gen in (repeated, swapped) for c in gen):
            return True
        for i in range(n + 1):  # one character omitted from a popular name
            for ch in "abcdefghijklmnopqrstuvwxyz0123456789-":
                if name[:i] + ch + name[i:] in corpus:
                    return True
        if "-" in name and "-".join(sorted(name.split("-"))) in words:
            return True
        base = _VERSION.sub("", name)
        return (base != name and base in corpus) or name.translate(_LOOKALIKE) in corpus

    return check


def guarddog_style(ranks: Mapping[str, int], top: int = 5000) -> Baseline:
    corpus = _by_rank(ranks, top)
    by_delete: dict[str, list[str]] = {}
    for target in corpus:
        for key in deletes(target, 1):
            by_delete.setdefault(key, []).append(target)
    cores = {c for n in corpus for c in py_stripped(n)} | corpus
    words = {"-".join(sorted(n.split("-"))) for n in corpus if "-" in n}

    def check(name: str) -> bool:
        if name in corpus:
            return False
        for key in deletes(name, 1):
            for target in by_delete.get(key, ()):
                if osa_distance(name, target, 1) == 1:
                    return True
        if any(core in cores for core in py_stripped(name)) or name in cores:
            return True
        return "-" in name and "-".join(sorted(name.split("-"))) in words

    return check
