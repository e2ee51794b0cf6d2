"""Typo-squat facts: does a requested project name look like a popular or protected one?

The detector combines the rule families of PyPI (ultranormalised collisions, TypoSnyper's
repeated/omitted/swapped characters and swapped words), typomania/SpellBound (version suffixes,
homoglyphs, keyboard typos), GuardDog (Damerau-Levenshtein 1, py/python confusion) and adds
Unicode confusables.  Every finding is weighed by popularity asymmetry: the name checked is not
in the corpus (so it is rare), and the more popular its look-alike, the higher the score (see
:mod:`proxy.facts.scoring`).

Lookups use precomputed indexes (SymSpell-style deletion neighbourhoods and folded keys), never
a scan of the corpus: ``check`` costs tens of microseconds against 15,000 names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from .compound import Compound, devowel
from .keyindex import KeyIndex
from .names import deletes, flat, osa_distance, skeleton, ultranormalize, visual_key
from .scoring import (
    METHOD_OF,
    WEIGHTS,
    classify_edit,
    edit_length_factor,
    edit_score,
    evidence_text,
    popularity_weight,
    whole_length_factor,
)

METHODS = (
    "homoglyph",
    "ultranormalized",
    "separator",
    "adjacent-swap",
    "repeated-char",
    "omitted-char",
    "edit-distance",
    "word-swap",
    "affix",
    "version-suffix",
)
DEFAULT_REPORT_THRESHOLD = 0.6
VOCABULARY_DISCOUNT = 0.75

_PY_PREFIXES = ("python3-", "python-", "py3-", "py-", "python3", "python", "py3", "py")
_PY_SUFFIXES = ("-python3", "-python", "-py3", "-py", "python3", "python")
_VERSION_TAIL = re.compile(r"-?v?\d+$")
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True, slots=True)
class SquatFinding:
    target: str  # the protected name it looks like
    method: str  # one of METHODS
    score: float  # 0..1 confidence, weighs popularity asymmetry
    kind: str = ""  # the precise relation (a key of scoring.WEIGHTS), for the reason text
    rank: int | None = None  # the target's download rank; None: protected (internal, allowed)

    def to_input(self) -> dict[str, str | float | int | None]:
        """The shape the policy input expects: ``{target, method, score, rank, evidence}``."""
        return {
            "target": self.target,
            "method": self.method,
            "score": self.score,
            "rank": self.rank,
            "evidence": evidence_text(self.kind or self.method, self.target, self.rank),
        }


def affix_cores(canonical: str) -> list[tuple[str, str]]:
    """``(core, affix)`` pairs: the flat name without one py/python prefix or suffix.

    ``affix`` names the part removed and where: ``"py<"`` for ``pymongo``, ``"python>"`` for
    ``kafka-python``.  Cores shorter than 3 characters are not returned.
    """
    cores = []
    for prefix in _PY_PREFIXES:
        if canonical.startswith(prefix):
            core = flat(canonical[len(prefix) :])
            if len(core) >= 3:
                cores.append((core, prefix.rstrip("-") + "<"))
            break
    for suffix in _PY_SUFFIXES:
        if canonical.endswith(suffix):
            core = flat(canonical[: -len(suffix)])
            if len(core) >= 3:
                cores.append((core, suffix.lstrip("-") + ">"))
            break
    return cores


def _same_but_3(a: str, b: str) -> bool:
    """``python<`` vs ``python3<``: the same affix but for the Python major version."""
    return a != b and a.replace("3", "") == b.replace("3", "")


def version_base(canonical: str) -> str:
    """The name without a trailing version number (``boto3`` -> ``boto``, ``foo-v2`` -> ``foo``)."""
    return _VERSION_TAIL.sub("", canonical)


def collapse_repeats(text: str) -> str:
    return _REPEATS.sub(r"\1", text)


class _Findings:
    """Best (score, method) per target index for one ``check`` call."""

    def __init__(self, pop: list[float], confusable: bool) -> None:
        self.best: dict[int, tuple[float, str, str]] = {}
        self._pop = pop
        self._confusable = confusable

    def add(self, idx: int, kind: str, prior: float) -> None:
        score = prior * self._pop[idx]
        method = METHOD_OF[kind]
        if self._confusable:  # non-ASCII look-alikes on top of any other relation
            method, score = "homoglyph", max(score, WEIGHTS["homoglyph"] * self._pop[idx])
            kind = "homoglyph"
        if idx not in self.best or score > self.best[idx][0]:
            self.best[idx] = (score, method, kind)


class TyposquatDetector:
    """Finds popular or protected names that a candidate project name imitates.

    ``popular`` maps names to download rank (1 = most downloaded); ``protected`` names (internal
    and allow-listed projects) weigh as much as the most popular ones.  Names in either set are
    never reported.  Findings scoring below ``report_threshold`` are dropped.
    """

    def __init__(
        self,
        popular: Mapping[str, int],
        protected: Iterable[str] = (),
        *,
        report_threshold: float = DEFAULT_REPORT_THRESHOLD,
        distance2_min_length: int = 10,
        distance2_max_rank: int = 300,
    ) -> None:
        self.report_threshold = report_threshold
        self._d2_min_len = distance2_min_length
        ranks: dict[str, int | None] = {}
        for name, rank in popular.items():
            canon = canonicalize_name(name)
            old = ranks.get(canon)
            ranks[canon] = rank if old is None or rank < old else old
        for name in protected:
            ranks[canonicalize_name(name)] = None  # weighs as the most popular
        self._names = sorted(ranks, key=lambda n: (ranks[n] or 0, n))
        self._index = {name: i for i, name in enumerate(self._names)}
        self._pop = [popularity_weight(ranks[n]) for n in self._names]
        self._protected = [ranks[n] is None for n in self._names]
        self._ranks = [ranks[n] for n in self._names]

        index: dict[str, dict[str, list[int]]] = {
            k: defaultdict(list)
            for k in ("flat", "ultra", "visual", "words", "version", "repeats", "vowels")
        }
        self._ix = index
        self._by_core: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._vocab: set[str] = set()  # words of popular names: "identity", "filer", ...
        for i, name in enumerate(self._names):
            f = flat(name)
            self._vocab.update(w for w in name.split("-") if len(w) >= 3)
            index["flat"][f].append(i)
            index["ultra"][ultranormalize(name)].append(i)
            index["visual"][visual_key(name)].append(i)
            index["repeats"][collapse_repeats(f)].append(i)
            words = name.split("-")
            if 2 <= len(words) <= 8:
                index["words"]["-".join(sorted(words))].append(i)
            for core, affix in affix_cores(name):
                self._by_core[core].append((i, affix))
            if len(f) >= 6:
                index["vowels"][devowel(f)].append(i)
            base = version_base(name)
            if base != name and len(base) >= 3:
                index["version"][base].append(i)

        self._del1 = KeyIndex((deletes(n, 1), i) for i, n in enumerate(self._names))
        self._del2 = KeyIndex(
            (deletes(n, 2), i)
            for i, n in enumerate(self._names)
            if len(n) >= distance2_min_length and (ranks[n] or 0) <= distance2_max_rank
        )  # a protected name (rank None) counts as the most popular
        self._weak = Compound(self._names, self._index, self._del1, index["flat"], index["vowels"])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonicalize_name(name) in self._index

    def __len__(self) -> int:
        return len(self._names)

    def check(self, name: str) -> list[SquatFinding]:
        """Findings for ``name`` (any spelling), best first; [] for corpus or protected names."""
        canon = canonicalize_name(name)
        if canon in self._index:
            return []
        q = skeleton(name)
        if not q:
            return []
        found = _Findings(self._pop, confusable=q != canon)
        if q in self._index:  # only reachable through Unicode folding
            found.add(self._index[q], "homoglyph", WEIGHTS["homoglyph"])
        self._collisions(q, found)
        self._affixes(q, found)
        self._edits(q, found)
        self._weak.find(q, found.add)
        findings = [
            SquatFinding(self._names[i], method, round(min(score, 1.0), 3), kind, self._ranks[i])
            for i, (score, method, kind) in found.best.items()
            if score >= self.report_threshold
        ]
        findings.sort(key=lambda f: (-f.score, f.target))
        return findings

    def _collisions(self, q: str, found: _Findings) -> None:
        """Whole-name collisions after folding: separators, l/1/o/0, rn/m, repeats, word order."""
        ix = self._ix
        f = flat(q)
        length = whole_length_factor(len(f))
        seen: set[int] = set()
        for kind, key in (
            ("separator", f),
            ("ultranormalized", ultranormalize(q)),
            ("homoglyph", visual_key(q)),
            ("collapsed-repeat", collapse_repeats(f)),
        ):
            for i in ix["flat" if kind == "separator" else _KEY_INDEX[kind]].get(key, ()):
                if i not in seen:
                    seen.add(i)
                    found.add(i, kind, WEIGHTS[kind] * length)
        words = q.split("-")
        if 2 <= len(words) <= 8:
            for i in ix["words"].get("-".join(sorted(words)), ()):
                found.add(i, "word-swap", WEIGHTS["word-swap"] * length)

    def _affixes(self, q: str, found: _Findings) -> None:
        """py/python prefixes and suffixes added, swapped or dropped; version suffixes."""
        ix = self._ix
        f = flat(q)
        for core, affix in affix_cores(q):
            prior = whole_length_factor(len(core))
            added = "affix-add-py" if affix == "py<" else "affix-add"
            for i in ix["flat"].get(core, ()):
                found.add(i, added, WEIGHTS[added] * prior)  # python-flask for flask
            for i, other in self._by_core.get(core, ()):
                if flat(self._names[i]) != f:  # python-mongo for pymongo
                    kind = "affix-version" if _same_but_3(affix, other) else "affix-swap"
                    found.add(i, kind, WEIGHTS[kind] * prior)
        for i, _ in self._by_core.get(f, ()):
            found.add(i, "affix-drop", WEIGHTS["affix-drop"] * whole_length_factor(len(f)))
        base = version_base(q)
        if len(base) < 3:
            return
        prior = edit_length_factor(len(flat(base)))
        if base != q:
            for i in ix["flat"].get(flat(base), ()):
                found.add(i, "version-add", WEIGHTS["version-add"] * prior)
            for i in ix["version"].get(base, ()):
                found.add(i, "version-change", WEIGHTS["version-change"] * prior)
        else:
            for i in ix["version"].get(base, ()):
                found.add(i, "version-drop", WEIGHTS["version-drop"] * prior)

    def _edits(self, q: str, found: _Findings) -> None:
        """Damerau-Levenshtein 1 via the deletion index; distance 2 for long popular names."""
        seen: set[int] = set()
        for key in deletes(q, 1):
            for i in self._del1.get(key):
                if i in seen:
                    continue
                seen.add(i)
                target = self._names[i]
                edit = classify_edit(q, target)
                if edit is not None:
                    prior = edit_score(edit, target, protected=self._protected[i])
                    found.add(i, edit.kind, prior * self._word_factor(q, target))
        if len(q) < self._d2_min_len - 2 or not self._del2:
            return
        for key in deletes(q, 2):
            for i in self._del2.get(key):
                if i not in seen:
                    seen.add(i)
                    target = self._names[i]
                    if osa_distance(q, target, 2) == 2:
                        short, long_ = sorted((q, target), key=len)
                        ends = long_.startswith(short) or long_.endswith(short)
                        kind = "extension-2" if ends else "distance-2"
                        prior = WEIGHTS[kind] * edit_length_factor(len(flat(target)) - 4)
                        found.add(i, kind, prior * self._word_factor(q, target))

    def _word_factor(self, q: str, target: str) -> float:
        """Discount edits that produce words popular names already use (identify/identity)."""
        new = set(q.split("-")) - set(target.split("-"))
        return VOCABULARY_DISCOUNT if new and new <= self._vocab else 1.0


_KEY_INDEX = {"ultranormalized": "ultra", "homoglyph": "visual", "collapsed-repeat": "repeats"}
