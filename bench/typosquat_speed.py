#!/usr/bin/env python3
"""Typo-squat detector speed on the shipped popularity corpus: build time and time per check.

usage: .venv/bin/python bench/typosquat_speed.py [N_NAMES]

Measured here, not asserted in the test suite (timings depend on the machine and its load).
"""

from __future__ import annotations

import sys
import time

from proxy.facts import load_corpus
from proxy.facts.evaluate import DEFAULT_CORPUS
from proxy.facts.typosquat import TyposquatDetector


def main(count: int) -> None:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    start = time.perf_counter()
    detector = TyposquatDetector(ranks)
    build = time.perf_counter() - start
    popular = sorted(ranks)[:count]
    names = [n + "x" if i % 2 else n[::-1] for i, n in enumerate(popular)]
    names = [n for n in names if n not in ranks]
    start = time.perf_counter()
    found = sum(1 for name in names if detector.check(name))
    per_check = (time.perf_counter() - start) / len(names)
    print(f"corpus: {len(ranks)} names; build {build:.2f} s")
    print(f"{len(names)} checks ({found} with findings): {per_check * 1e3:.3f} ms per check")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
