"""Name folding used by the typo-squat detector: separators, PyPI ultranormalisation, homoglyphs.

All functions take a PEP 503 canonical name (lowercase, runs of ``-_.`` collapsed to ``-``)
unless they say otherwise, and are pure.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from packaging.utils import canonicalize_name

# PyPI's ``ultranormalize_name``: separators removed, l/i -> 1, o -> 0 (after lowercasing).
_ULTRA = str.maketrans({"l": "1", "i": "1", "o": "0"})

# Characters that render as (almost) nothing; stripped before comparing.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"),
    None,
)

# Unicode look-alikes of ASCII letters that NFKC leaves alone (Cyrillic, Greek, Armenian, a few
# Latin extensions), both cases, and dash or dot look-alikes.  A subset of Unicode's
# confusables.txt restricted to characters that can pass for a package-name character.
_CONFUSABLE_PAIRS = (
    # Cyrillic lowercase
    "аa вb сc ԁd еe һh іi јj кk ӏl мm оo рp ԛq гr ѕs тt ѵv ԝw хx уy үy ьb ɡg"
    # Cyrillic uppercase
    " Аa Вb Сc Еe Нh Іi Јj Кk Мm Оo Рp Ԛq Ѕs Тt Ѵv Ԝw Хx Уy Үy Ӏl Ьb"
    # Greek
    " αa βb γy εe ιi κk νv οo ρp τt υu χx ωw"
    " Αa Βb Εe Ζz Ηh Ιi Κk Μm Νn Οo Ρp Τt Υy Χx"
    # Armenian
    " օo սu հh ոn ցg"
    # Latin extensions
    " ıi ȷj łl ƚl ŀl ǀl ɩi øo đd ħh ɑa ƅb ɓb ɗd ɦh ʋv ʏy"
)
_CONFUSABLES: dict[int, str] = {ord(pair[0]): pair[1] for pair in _CONFUSABLE_PAIRS.split()}
_CONFUSABLES.update(dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043"), "-"))
_CONFUSABLES.update(dict.fromkeys(map(ord, "\u00b7\u2024\u2027\u30fb"), "."))
_CONFUSABLES.update({ord("ß"): "ss", ord("æ"): "ae", ord("œ"): "oe", ord("Æ"): "ae", ord("Œ"): "oe"})

# ASCII sequences that look alike in most fonts (typomania's homoglyph table, multi-letter part).
_VISUAL_SEQ = re.compile(r"rn|vv")
_VISUAL_REPL = {"rn": "m", "vv": "w"}

# Single-character substitutions that are visual rather than keyboard slips.
VISUAL_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in (
        "0o", "1l", "1i", "il", "5s", "3e", "4a", "8b", "6b", "9g", "9q", "2z", "7t", "uv",
        "gq",
    )
)  # fmt: skip

_KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_OFFSETS = (0.0, 0.5, 0.75, 1.25)


def _keyboard_neighbours() -> frozenset[frozenset[str]]:
    pos = {
        ch: (row, col + _KEY_OFFSETS[row])
        for row, keys in enumerate(_KEY_ROWS)
        for col, ch in enumerate(keys)
    }
    pairs = set()
    for a, (ra, xa) in pos.items():
        for b, (rb, xb) in pos.items():
            if a < b and abs(ra - rb) <= 1 and abs(xa - xb) <= 1.0:
                pairs.add(frozenset((a, b)))
    return frozenset(pairs)


KEYBOARD_PAIRS = _keyboard_neighbours()


def flat(canonical: str) -> str:
    """The name without separators (``python-dateutil`` -> ``pythondateutil``)."""
    return canonical.replace("-", "")


def ultranormalize(canonical: str) -> str:
    """PyPI's collision key: separators removed, ``l``/``i`` -> ``1``, ``o`` -> ``0``."""
    return flat(canonical).translate(_ULTRA)


def visual_key(canonical: str) -> str:
    """Ultranormal form after folding ASCII look-alike sequences (``rn`` -> ``m``, ``vv`` -> ``w``)."""
    folded = _VISUAL_SEQ.sub(lambda m: _VISUAL_REPL[m.group()], flat(canonical))
    return ultranormalize(folded)


@cache
def _fold_char(ch: str) -> str:
    mapped = _CONFUSABLES.get(ord(ch))
    if mapped is not None:
        return mapped
    if ch.isascii():
        return ch
    # Accents and other marks: é -> e, ё -> е (then confusable -> e).
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return "".join(_CONFUSABLES.get(ord(c), c) for c in base)


def skeleton(name: str) -> str:
    """Canonical name after NFKC, invisible-character removal and confusable folding.

    Works on any spelling (not only canonical names): ``rеquests`` with a Cyrillic ``е``,
    ``ｒｅｑｕｅｓｔｓ`` (full width) and ``requests`` all give ``requests``.
    """
    text = unicodedata.normalize("NFKC", name).translate(_INVISIBLE)
    if not text.isascii():
        text = "".join(_fold_char(ch) for ch in text)
    return canonicalize_name(text)


def is_keyboard_slip(a: str, b: str) -> bool:
    return frozenset((a, b)) in KEYBOARD_PAIRS


def is_visual_pair(a: str, b: str) -> bool:
    return frozenset((a, b)) in VISUAL_PAIRS


def deletes(word: str, depth: int) -> set[str]:
    """All strings obtained by deleting up to ``depth`` characters (``word`` itself included)."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        nxt: set[str] = set()
        for w in frontier:
            for i in range(len(w)):
                nxt.add(w[:i] + w[i + 1 :])
        out |= nxt
        frontier = nxt
    return out


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment (restricted Damerau-Levenshtein) distance, capped at ``limit + 1``."""
    la, lb = len(a), len(b)
    if abs(la - lb) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        row_min = i
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            row_min = min(row_min, v)
        if row_min > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[lb], limit + 1)
