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

# Unicode look-alikes of ASCII letters that NFKC leaves alone: Cyrillic, Greek, Armenian and a
# few Latin extensions, both cases.  A subset of Unicode's confusables.txt restricted to
# characters that can pass for a package-name letter; written as escapes on purpose.
_CONFUSABLE_GROUPS = {
    "a": "\u0430\u0410\u03b1\u0391\u0251",
    "b": "\u0432\u044c\u0412\u042c\u03b2\u0392\u0185\u0253",
    "c": "\u0441\u0421",
    "d": "\u0501\u0111\u0257",
    "e": "\u0435\u0415\u03b5\u0395",
    "g": "\u0261\u0581",
    "h": "\u04bb\u041d\u0397\u0570\u0127\u0266",
    "i": "\u0456\u0406\u03b9\u0399\u0131\u0269",
    "j": "\u0458\u0408\u0237",
    "k": "\u043a\u041a\u03ba\u039a",
    "l": "\u04cf\u04c0\u0142\u019a\u0140\u01c0",
    "m": "\u043c\u041c\u039c",
    "n": "\u039d\u0578",
    "o": "\u043e\u041e\u03bf\u039f\u0585\u00f8",
    "p": "\u0440\u0420\u03c1\u03a1",
    "q": "\u051b\u051a",
    "r": "\u0433",
    "s": "\u0455\u0405",
    "t": "\u0442\u0422\u03c4\u03a4",
    "u": "\u03c5\u057d",
    "v": "\u0475\u0474\u03bd\u028b",
    "w": "\u051d\u051c\u03c9",
    "x": "\u0445\u0425\u03c7\u03a7",
    "y": "\u0443\u04af\u0423\u04ae\u03b3\u03a5\u028f",
    "z": "\u0396",
}
_CONFUSABLES: dict[int, str] = {
    ord(ch): ascii_ for ascii_, chars in _CONFUSABLE_GROUPS.items() for ch in chars
}
_CONFUSABLES.update(
    dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043"), "-")
)
_CONFUSABLES.update(dict.fromkeys(map(ord, "\u00b7\u2024\u2027\u30fb"), "."))
# sharp s and ligatures
_CONFUSABLES.update({0xDF: "ss", 0xE6: "ae", 0x153: "oe", 0xC6: "ae", 0x152: "oe"})

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
    """Ultranormal form after folding ASCII look-alikes (``rn`` -> ``m``, ``vv`` -> ``w``)."""
    folded = _VISUAL_SEQ.sub(lambda m: _VISUAL_REPL[m.group()], flat(canonical))
    return ultranormalize(folded)


@cache
def _fold_char(ch: str) -> str:
    mapped = _CONFUSABLES.get(ord(ch))
    if mapped is not None:
        return mapped
    if ch.isascii():
        return ch
    # Accents and other marks: e-acute -> e; Cyrillic yo -> Cyrillic ie (then confusable -> e).
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return "".join(_CONFUSABLES.get(ord(c), c) for c in base)


def skeleton(name: str) -> str:
    """Canonical name after NFKC, invisible-character removal and confusable folding.

    Works on any spelling (not only canonical names): ``requests`` with a Cyrillic ``e``
    (U+0435), in full-width letters (U+FF52 ...) or with a zero-width space all give
    ``requests``.
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
    """All strings obtained by deleting up to ``depth`` (1 or 2) characters, ``word`` included."""
    first = {word[:i] + word[i + 1 :] for i in range(len(word))}
    out = first | {word}
    if depth >= 2:
        for w in first:
            out.update([w[:i] + w[i + 1 :] for i in range(len(w))])
    return out


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment (restricted Damerau-Levenshtein) distance, capped at limit+1."""
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
