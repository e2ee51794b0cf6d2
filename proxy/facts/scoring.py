"""How much a single look-alike relation between two names says, before and after popularity.

A score is ``kind weight x length factor x edge factor x popularity``:

* the *kind weight* is the prior that a collision of this kind is deliberate (a Unicode
  look-alike: almost always; a trailing version digit: often legitimate);
* the *length factor* discounts short strings, which collide by chance (``h2``/``h3``,
  ``pox``/``tox``); for an edit inside a multi-word name it uses the edited word, so plugin
  families (``pytest-mpl``/``pytest-mpi``, ``aws-cdk-aws-ssm``/``-sam``) stay quiet;
* the *edge factor* discounts edits at the ends of a name, where legitimate derivatives add a
  letter (``whisperx``, ``aresponses``, ``sentinels``);
* *popularity* is the asymmetry: the candidate is outside the corpus, so the more popular its
  look-alike, the more likely it was named to be mistaken for it.  Protected (internal and
  allow-listed) names weigh 1.15, above rank 1, and their multi-word names are not discounted.

The detector also discounts character edits that produce a word popular names already use
(``identity`` next to ``identify``), and a Unicode look-alike is always a ``homoglyph`` scored at
least 0.97 x popularity.  Weights were set from counts per kind on published squats versus
held-out legitimate names (adjacent swaps and doubled letters: ~100 squats, 1 legitimate
name; separators and version digits: mostly legitimate), and the report threshold (0.6) from
the held-out split 1..9,000 / 9,001..12,000; ``python -m proxy.facts.evaluate`` re-measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .names import is_keyboard_slip, is_visual_pair

# Prior per internal kind.  Public method names are in METHOD_OF.
WEIGHTS: dict[str, float] = {
    "homoglyph": 0.97,  # a Unicode or rn/vv look-alike of a known name
    "ultranormalized": 0.9,  # PyPI refuses these at registration (l/i/1, o/0, separators)
    "separator": 0.7,  # only separators differ: mostly projects older than PyPI's rule
    "word-swap": 0.8,
    "adjacent-swap": 0.97,  # legitimate names are almost never swaps of popular ones
    "visual-sub": 0.9,  # one visually confusable character replaced (0/o, 5/s, ...)
    "repeated-char": 0.95,  # ditto for doubled letters
    "collapsed-repeat": 0.92,  # several doubled letters (pycparserrr)
    "keyboard-sub": 0.76,  # one character replaced by a QWERTY neighbour
    "omitted-char": 0.8,
    "inserted-char": 0.78,  # one extra character that is not a doubling (colourama)
    "substitution": 0.66,  # any other single replacement
    "affix-add": 0.75,  # python-flask, pythonhttpx, faker-python
    "affix-add-py": 0.59,  # pyjsonpatch, py-bcrypt: many legitimate wrappers are named so
    "affix-version": 0.45,  # python-openid for python3-openid
    "affix-swap": 0.75,  # python-mongo for pymongo, pythonkafka for kafka-python
    "affix-drop": 0.4,  # serial for pyserial: common for legitimate projects
    "version-add": 0.7,  # requests2, telethon2: new projects only (below deny_score)
    "version-change": 0.62,  # httplib3 for httplib2
    "version-drop": 0.4,  # pyasn for pyasn1
    "digit-sub": 0.45,  # a digit replaced by another one inside the name (cu11/cu12)
    "distance-2": 0.7,  # two edits; only long names among the 300 most popular or protected
    "extension-2": 0.35,  # two characters added or cut at one end (pytest-async, -pyrs)
    # Weak on their own (legitimate names do this): they deny new projects only.
    "affix-typo": 0.65,  # python-reqeusts: a py/python affix on a one-edit typo
    "vendor-affix": 0.65,  # requests-ai, openai-requests
    "dropped-vowels": 0.65,  # rqests
    "plural": 0.7,  # copiers, keras-application: the whole name's plural or singular
    "distance-2-any": 0.62,  # two edits from a top-3,000 name of 7+ characters: below warn
}
METHOD_OF: dict[str, str] = {
    "visual-sub": "homoglyph",
    "keyboard-sub": "edit-distance",
    "inserted-char": "edit-distance",
    "substitution": "edit-distance",
    "distance-2": "edit-distance",
    "extension-2": "edit-distance",
    "collapsed-repeat": "repeated-char",
    "affix-add": "affix",
    "affix-add-py": "affix",
    "affix-version": "affix",
    "affix-swap": "affix",
    "affix-drop": "affix",
    "version-add": "version-suffix",
    "version-change": "version-suffix",
    "version-drop": "version-suffix",
    "digit-sub": "version-suffix",
    "affix-typo": "affix",
    "vendor-affix": "affix",
    "dropped-vowels": "edit-distance",
    "plural": "edit-distance",
    "distance-2-any": "edit-distance",
} | {
    m: m
    for m in (
        "homoglyph", "ultranormalized", "separator", "word-swap", "adjacent-swap",
        "repeated-char", "omitted-char",
    )
}  # fmt: skip

_EDIT_LENGTH = (0.1, 0.1, 0.15, 0.35, 0.6, 0.8, 0.92)  # by length; 1.0 from 8 on


PROTECTED_WEIGHT = 1.15  # internal and allow-listed names: above the most popular


def popularity_weight(rank: int | None) -> float:
    """1.0 for the top 100; 0.75 at rank 1,000, 0.5 at 10,000; protected names (None) 1.15."""
    if rank is None:
        return PROTECTED_WEIGHT
    return max(0.35, min(1.0, 1.0 - 0.25 * math.log10(max(rank, 1) / 100)))


def edit_length_factor(length: int) -> float:
    return _EDIT_LENGTH[length] if length < len(_EDIT_LENGTH) else 1.0


def whole_length_factor(length: int) -> float:
    """For collisions of the whole folded name (separators, homoglyphs, word order, affixes)."""
    return 0.3 if length <= 2 else 0.55 if length == 3 else 0.8 if length == 4 else 1.0


@dataclass(frozen=True, slots=True)
class Edit:
    """One edit turning a target into the candidate."""

    kind: str
    pos: int  # position in the target where the edit happens
    char: str  # the character inserted, omitted or substituted in (candidate side)


def classify_edit(q: str, t: str) -> Edit | None:
    """The single Damerau-Levenshtein edit from target ``t`` to candidate ``q``, if exactly one."""
    lq, lt = len(q), len(t)
    if lq == lt:
        i = 0
        while i < lq and q[i] == t[i]:
            i += 1
        if i == lq:
            return None
        j = lq - 1
        while q[j] == t[j]:
            j -= 1
        if j == i + 1 and q[i] == t[j] and q[j] == t[i]:
            return Edit("adjacent-swap", i, q[i])
        if i != j:
            return None
        a, b = q[i], t[i]
        if "-" in (a, b):
            kind = "separator"
        elif a.isdigit() and b.isdigit():
            kind = "version-change" if i == lq - 1 else "digit-sub"
        elif is_visual_pair(a, b):
            kind = "visual-sub"
        elif is_keyboard_slip(a, b):
            kind = "keyboard-sub"
        else:
            kind = "substitution"
        return Edit(kind, i, a)
    if abs(lq - lt) != 1:
        return None
    longer, shorter = (q, t) if lq > lt else (t, q)
    i = 0
    while i < len(shorter) and longer[i] == shorter[i]:
        i += 1
    if longer[i + 1 :] != shorter[i:]:
        return None
    ch = longer[i]
    doubled = (i > 0 and longer[i - 1] == ch) or (i + 1 < len(longer) and longer[i + 1] == ch)
    at_end = i == len(shorter)
    if ch == "-":
        kind = "separator"
    elif ch.isdigit() and at_end:
        kind = "version-add" if lq > lt else "version-drop"
    elif lq < lt:
        kind = "omitted-char"
    elif doubled:
        kind = "repeated-char"
    else:
        kind = "inserted-char"
    return Edit(kind, i, ch)


def edit_score(edit: Edit, target: str, *, protected: bool = False) -> float:
    """Kind weight x length factor x edge factor (popularity is applied by the caller).

    For ``protected`` targets the edited word's length is not considered: an internal
    ``acme-billing`` has no legitimate public ``acme-bililng`` sibling.
    """
    weight = WEIGHTS[edit.kind]
    if edit.kind == "separator":
        return weight * whole_length_factor(len(target.replace("-", "")))
    whole = edit_length_factor(len(target.replace("-", "")))
    if "-" in target and not protected:
        start = target.rfind("-", 0, edit.pos) + 1
        end = target.find("-", edit.pos)
        word = target[start : end if end >= 0 else len(target)]
        length = max(edit_length_factor(len(word)), 0.6 * whole)
    else:
        length = whole
    edge = 1.0
    first, last = edit.pos == 0, edit.pos >= len(target) - 1
    if edit.kind in ("inserted-char", "substitution", "keyboard-sub") and (first or last):
        edge = 0.8  # ctransformers, ngboost/xgboost, whisperx, scipp/scipy
    elif edit.kind in ("omitted-char", "inserted-char") and edit.char == "s" and last:
        edge = 0.8  # plural/singular: sentinel/sentinels, environ/environs
    return weight * length * edge


# How each relation reads in a denial: "'reqeusts' is <phrase> 'requests' (rank 6)".
_PHRASES: dict[str, str] = {
    "adjacent-swap": "1 edit (transposition) from",
    "repeated-char": "1 edit (doubled letter) from",
    "collapsed-repeat": "doubled letters away from",
    "omitted-char": "1 edit (dropped letter) from",
    "inserted-char": "1 edit (inserted letter) from",
    "keyboard-sub": "1 edit (keyboard slip) from",
    "substitution": "1 edit (substitution) from",
    "visual-sub": "1 look-alike character (homoglyph) from",
    "homoglyph": "a look-alike (homoglyph) of",
    "ultranormalized": "a look-alike (l/i/1, o/0, separators) of",
    "separator": "the same name with other separators as",
    "word-swap": "the words, re-ordered, of",
    "affix-add": "a python prefix or suffix added to",
    "affix-add-py": "a py prefix added to",
    "affix-version": "a python/python3 affix variant of",
    "affix-swap": "a py/python affix variant of",
    "affix-drop": "a py/python affix dropped from",
    "affix-typo": "a py/python affix plus a typo away from",
    "version-add": "a version suffix added to",
    "version-change": "another version suffix of",
    "version-drop": "a version suffix dropped from",
    "digit-sub": "1 digit changed in",
    "distance-2": "2 edits from",
    "distance-2-any": "2 edits from",
    "extension-2": "2 characters added or cut at one end of",
    "plural": "the plural or singular of",
    "vendor-affix": "a vendor or AI affix added to",
    "dropped-vowels": "missing vowels of",
}


def evidence_text(kind: str, target: str, rank: int | None) -> str:
    """``1 edit (transposition) from 'requests' (rank 6)``; protected targets say so."""
    where = f"rank {rank}" if rank is not None else "protected: internal or allow-listed"
    return f"{_PHRASES.get(kind, kind)} '{target}' ({where})"
