"""Evaluation sets for the typo-squat rule: synthetic squats per family, legitimate projects.

Synthetic squats are made here, deterministically (seeded), from the popularity corpus: for
each family, one squat of each of ``per_family`` targets drawn from the corpus ranks
``1..max_rank`` (names of 5+ characters).  A generated name that is itself in the corpus is
dropped.  Legitimate projects are read from the shipped tab-separated files
``tests/data/typosquat/legit_*.tsv`` (name, latest version, latest release month).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from .names import KEYBOARD_PAIRS

Rng = random.Random
VOWELS = "aeiou"
_DIGIT_FOR = {"o": "0", "l": "1", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7", "b": "8"}
_VENDOR = ("ai", "gpt", "llm", "sdk", "api", "client", "official", "pro", "openai", "tools")
_NEIGHBOURS: dict[str, list[str]] = {}
for _pair in KEYBOARD_PAIRS:
    _a, _b = sorted(_pair)
    if _a.isalpha() and _b.isalpha():
        _NEIGHBOURS.setdefault(_a, []).append(_b)
        _NEIGHBOURS.setdefault(_b, []).append(_a)


@dataclass(frozen=True, slots=True)
class Legit:
    name: str
    version: str
    month: str  # YYYY-MM of the latest release


def read_legit(path: Path) -> list[Legit]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, version, month = line.split("\t")[:3]
        out.append(Legit(canonicalize_name(name), version, month))
    return out


def _letters(t: str, rng: Rng) -> int | None:
    """A random inner position holding a letter (not the first character)."""
    spots = [i for i in range(1, len(t)) if t[i].isalpha()]
    return rng.choice(spots) if spots else None


def keyboard(t: str, rng: Rng) -> str | None:
    i = _letters(t, rng)
    if i is None or t[i] not in _NEIGHBOURS:
        return None
    return t[:i] + rng.choice(sorted(_NEIGHBOURS[t[i]])) + t[i + 1 :]


def doubled(t: str, rng: Rng) -> str | None:
    i = _letters(t, rng)
    return None if i is None else t[:i] + t[i] + t[i:]


def dropped(t: str, rng: Rng) -> str | None:
    i = _letters(t, rng)
    return None if i is None else t[:i] + t[i + 1 :]


def transposition(t: str, rng: Rng) -> str | None:
    spots = [i for i in range(1, len(t) - 1) if t[i] != t[i + 1] and "-" not in t[i : i + 2]]
    if not spots:
        return None
    i = rng.choice(spots)
    return t[:i] + t[i + 1] + t[i] + t[i + 2 :]


def homoglyph(t: str, rng: Rng) -> str | None:
    options = []
    if "m" in t:
        options.append(t.replace("m", "rn", 1))
    if "w" in t:
        options.append(t.replace("w", "vv", 1))
    for ch, digit in _DIGIT_FOR.items():
        if ch in t[1:]:
            options.append(t[0] + t[1:].replace(ch, digit, 1))
    return rng.choice(options) if options else None


def separator(t: str, rng: Rng) -> str | None:
    if "-" in t:
        return t.replace("-", "", 1)
    i = rng.randrange(2, len(t) - 1)
    return t[:i] + "-" + t[i:]


def word_order(t: str, rng: Rng) -> str | None:
    words = t.split("-")
    if len(words) < 2:
        return None
    return "-".join(words[1:] + words[:1])


def py_affix(t: str, rng: Rng) -> str | None:
    if t.startswith("py") and len(t) > 5:
        return rng.choice(["python-" + t[2:], t[2:] + "-python"])
    return rng.choice(["py" + t, "python-" + t, t + "-py", t + "-python", "py-" + t])


def py_affix_typo(t: str, rng: Rng) -> str | None:
    typo = transposition(t, rng) or dropped(t, rng)
    return None if typo is None else rng.choice(["python-", "py"]) + typo


def plural(t: str, rng: Rng) -> str | None:
    return t[:-1] if t.endswith("s") else t + "s"


def version_suffix(t: str, rng: Rng) -> str | None:
    return t + rng.choice(["2", "3", "-v2", "-2", "5"])


def vendor_affix(t: str, rng: Rng) -> str | None:
    word = rng.choice(_VENDOR)
    return rng.choice([f"{t}-{word}", f"{word}-{t}"])


def dropped_vowels(t: str, rng: Rng) -> str | None:
    spots = [i for i in range(1, len(t)) if t[i] in VOWELS]
    if len(spots) < 2:
        return None
    gone = set(rng.sample(spots, 2))
    return "".join(ch for i, ch in enumerate(t) if i not in gone)


def two_edits(t: str, rng: Rng) -> str | None:
    first = rng.choice([keyboard, doubled, dropped, transposition])(t, rng)
    if first is None:
        return None
    return rng.choice([keyboard, doubled, dropped, transposition])(first, rng)


FAMILIES: dict[str, Callable[[str, Rng], str | None]] = {
    "keyboard slip": keyboard,
    "doubled letter": doubled,
    "dropped letter": dropped,
    "transposition": transposition,
    "homoglyph": homoglyph,
    "separator": separator,
    "word order": word_order,
    "py/python affix": py_affix,
    "py affix + typo": py_affix_typo,
    "plural/singular": plural,
    "version suffix": version_suffix,
    "vendor/AI affix": vendor_affix,
    "dropped vowels": dropped_vowels,
    "two edits": two_edits,
}


def synthetic(
    ranks: Mapping[str, int], *, per_family: int = 200, max_rank: int = 5000, seed: int = 7
) -> dict[str, list[tuple[str, str]]]:
    """``{family: [(squat, target), ...]}``; squats are canonical names outside the corpus."""
    pool = sorted(n for n, r in ranks.items() if r <= max_rank and len(n) >= 5)
    multi = [n for n in pool if "-" in n]
    out: dict[str, list[tuple[str, str]]] = {}
    for family, make in FAMILIES.items():
        rng = random.Random(f"{seed}:{family}")  # noqa: S311 - a reproducible sample
        targets = multi if family == "word order" else pool
        pairs: list[tuple[str, str]] = []
        seen: set[str] = set()
        for target in rng.sample(targets, min(len(targets), per_family * 3)):
            made = make(target, rng)
            if made is None:
                continue
            squat = canonicalize_name(made)
            if squat in ranks or squat in seen or squat == target:
                continue
            seen.add(squat)
            pairs.append((squat, target))
            if len(pairs) == per_family:
                break
        out[family] = pairs
    return out


SPLITS = ("dev", "held-out")


def split_of(key: str) -> str:
    """``dev`` or ``held-out``, fixed by a hash of the canonical key (half and half)."""
    digest = hashlib.blake2b(canonicalize_name(key).encode(), digest_size=2).digest()
    return SPLITS[digest[0] % 2]


def read_defensive(path: Path) -> set[str]:
    """Names of ``defensive.tsv``: defensive or placeholder registrations, by their summary."""
    if not path.exists():
        return set()
    return {
        canonicalize_name(line.split("\t", 1)[0])
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
