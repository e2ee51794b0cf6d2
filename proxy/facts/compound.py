"""Weaker look-alike relations for the typo-squat detector: they hold back NEW projects only.

Each is common among legitimate names too (a plural, a py prefix on another project's name,
a word dropped from a long name), so alone they score below ``typosquat.deny_score``; the
policy denies them only together with a new project's history (``suspect_score``):

* a py/python affix on top of a one-edit typo (``python-reqeusts``, ``pyfcatory-boy``);
* a plural or singular of the whole name (``copiers``, ``keras-application``);
* a vendor or AI word added (``requests-ai``, ``openai-requests``);
* vowels dropped (``rqests``);
* two edits from any of the 3,000 most popular names of 7+ characters (``chcksumxir`` for
  ``checksumdir``), beyond the strong distance-2 index of the most popular long names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .keyindex import KeyIndex
from .names import deletes, flat, osa_distance
from .scoring import WEIGHTS, classify_edit, edit_length_factor, whole_length_factor

Add = Callable[[int, str, float], None]

VENDOR_WORDS = ("ai", "gpt", "llm", "sdk", "api", "client", "official", "pro", "openai", "tools")
WIDE_D2_MIN_LENGTH = 7  # flat length of corpus names in the wide two-edit index
WIDE_D2_MAX_POSITION = 3000  # ... and their position in the corpus (rank order): build cost

_PY_PREFIXES = ("python3-", "python-", "py3-", "py-", "python3", "python", "py3", "py")
_PY_SUFFIXES = ("-python3", "-python", "-py3", "-py", "python3", "python")


def py_stripped(canonical: str) -> list[str]:
    """The canonical name without one py/python prefix or suffix (hyphens kept), 3+ chars."""
    out = []
    for prefix in _PY_PREFIXES:
        if canonical.startswith(prefix):
            out.append(canonical[len(prefix) :].strip("-"))
            break
    for suffix in _PY_SUFFIXES:
        if canonical.endswith(suffix):
            out.append(canonical[: -len(suffix)].strip("-"))
            break
    return [c for c in out if len(flat(c)) >= 3]


def vendor_cores(canonical: str) -> list[str]:
    """The flat name without one vendor or AI word at either end (``requests-ai``)."""
    words = canonical.split("-")
    cores = []
    if len(words) >= 2 and words[0] in VENDOR_WORDS:
        cores.append("".join(words[1:]))
    if len(words) >= 2 and words[-1] in VENDOR_WORDS:
        cores.append("".join(words[:-1]))
    return [c for c in cores if len(c) >= 4]


def devowel(flat_name: str) -> str:
    """The name without vowels after its first letter (``requests`` -> ``rqsts``)."""
    return flat_name[:1] + "".join(ch for ch in flat_name[1:] if ch not in "aeiou")


def plural_forms(canonical: str) -> list[str]:
    """Singular or plural spellings of the whole name: ``copier``<->``copiers``, ``-es``."""
    out = [canonical + "s"]
    if canonical.endswith("es"):
        out.append(canonical[:-2])
    if canonical.endswith("s") and not canonical.endswith("ss"):
        out.append(canonical[:-1])
    else:
        out.append(canonical + "es")
    return [c for c in out if len(flat(c)) >= 4]


def wide_d2_index(names: Sequence[str]) -> KeyIndex:
    """Two-deletion neighbourhoods of every corpus name of ``WIDE_D2_MIN_LENGTH``+ characters."""
    return KeyIndex(
        (deletes(flat(n), 2), i)
        for i, n in enumerate(names[:WIDE_D2_MAX_POSITION])
        if len(flat(n)) >= WIDE_D2_MIN_LENGTH
    )


class Compound:
    """The weak relations of one detector, over its names and indexes."""

    def __init__(
        self,
        names: Sequence[str],
        index: dict[str, int],
        del1: KeyIndex,
        flat_ix: dict[str, list[int]],
        vowels: dict[str, list[int]],
    ) -> None:
        self._names = names
        self._index = index
        self._del1 = del1
        self._flat = flat_ix
        self._vowels = vowels
        self._wide = wide_d2_index(names)
        self._flat_names = [flat(n) for n in names]

    def find(self, q: str, add: Add) -> None:
        self._affix_typo(q, add)
        self._plural(q, add)
        for core in vendor_cores(q):
            for i in self._flat.get(core, ()):
                add(i, "vendor-affix", WEIGHTS["vendor-affix"] * whole_length_factor(len(core)))
        f = flat(q)
        for i in self._vowels.get(devowel(f), ()):
            if len(f) < len(self._flat_names[i]):
                add(i, "dropped-vowels", WEIGHTS["dropped-vowels"])
        self._two_edits(f, add)

    def _affix_typo(self, q: str, add: Add) -> None:
        for core in py_stripped(q):
            for key in deletes(core, 1):
                for i in self._del1.get(key):
                    if classify_edit(core, self._names[i]) is not None:
                        prior = WEIGHTS["affix-typo"] * edit_length_factor(len(flat(core)))
                        add(i, "affix-typo", prior)

    def _plural(self, q: str, add: Add) -> None:
        for form in plural_forms(q):
            i = self._index.get(form)
            if i is not None:
                add(i, "plural", WEIGHTS["plural"] * edit_length_factor(len(flat(form))))

    def _two_edits(self, f: str, add: Add) -> None:
        if len(f) < WIDE_D2_MIN_LENGTH - 2:
            return
        seen: set[int] = set()
        for key in deletes(f, 2):
            for i in self._wide.get(key):
                if i in seen:
                    continue
                seen.add(i)
                target = self._flat_names[i]
                if target != f and osa_distance(f, target, 2) == 2:
                    prior = WEIGHTS["distance-2-any"] * edit_length_factor(len(target) - 3)
                    add(i, "distance-2-any", prior)
