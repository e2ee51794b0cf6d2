"""The pickle allow-list: the only globals a pickle may import and still count as clean.

The shipped list is package data (``proxy/scan/pickle-allowlist.json``, so it is there in any
install); admins extend it in ``policies/scan/pickle-allowlist.json`` (the proxy passes those
entries as extras) or with ``airlock scan --allow``/``--allowlist``.  An entry is a dotted name
(``module.attr``) or ``module.*`` for every public top-level name of one module.
"""

from __future__ import annotations

import _compat_pickle
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent / "pickle-allowlist.json"

_ENTRY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\.\*)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


def valid_entry(entry: str) -> bool:
    return _ENTRY.fullmatch(entry) is not None


def plausible_import(module: str, name: str) -> bool:
    """Whether ``pickle`` could import anything at all for this pair (dotted identifiers)."""
    return _NAME.fullmatch(module) is not None and _NAME.fullmatch(name) is not None


def load_allowlist(path: Path | None = None) -> frozenset[str]:
    """Entries of an allow-list file (the shipped one by default); invalid entries raise."""
    return _load(path or DEFAULT_PATH)


@lru_cache(maxsize=8)
def _load(path: Path) -> frozenset[str]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    entries = doc.get("globals") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"{path}: expected an object with a list of strings under 'globals'")
    return frozenset(check_entries(entries))


def check_entries(entries: Iterable[str]) -> list[str]:
    out = list(entries)
    bad = [e for e in out if not valid_entry(e)]
    if bad:
        raise ValueError(f"invalid allow-list entries: {', '.join(map(repr, bad[:5]))}")
    return out


class Allowlist:
    """Matches ``(module, name)`` pairs as the unpickler would resolve them."""

    __slots__ = ("_exact", "_modules")

    def __init__(self, entries: Iterable[str]) -> None:
        exact: set[str] = set()
        modules: set[str] = set()
        for entry in entries:
            if entry.endswith(".*"):
                modules.add(entry[:-2])
            else:
                exact.add(entry)
        self._exact = frozenset(exact)
        self._modules = frozenset(modules)

    def allows(self, module: str, name: str) -> bool:
        for mod, attr in _spellings(module, name):
            dotted = f"{mod}.{attr}"
            if dotted in self._exact:
                return True
            head, _, last = dotted.rpartition(".")
            if head in self._modules and not last.startswith("__"):
                return True
        return False


def _spellings(module: str, name: str) -> list[tuple[str, str]]:
    """The pair itself and its Python 3 spelling (``fix_imports`` for protocol 0-2 pickles)."""
    out = [(module, name)]
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        out.append(mapped)
    elif module in _compat_pickle.IMPORT_MAPPING:
        out.append((_compat_pickle.IMPORT_MAPPING[module], name))
    return out
