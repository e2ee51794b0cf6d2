"""Facts computed in Python for the policy engine (typo-squat findings, popularity corpus).

Python computes facts; Rego policies decide.  Nothing here performs I/O except the corpus loader
and the ``facts`` command-line verbs.
"""

from __future__ import annotations

from .corpus import CorpusError, CorpusInfo, load_corpus
from .typosquat import SquatFinding, TyposquatDetector

__all__ = ["CorpusError", "CorpusInfo", "SquatFinding", "TyposquatDetector", "load_corpus"]
