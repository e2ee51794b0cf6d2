"""Measure the typo-squat detector: false positives on popular legitimate names, recall on squats.

``python -m proxy.facts.evaluate`` prints

(a) the false-positive rate: the detector is built from corpus ranks ``1..E`` (default 12,000)
    and run on the held-out ranks ``E+1..H`` (default 15,000).  Those are popular, legitimate
    projects outside the corpus in use, which is exactly what a new but honest project looks
    like to the detector, so every flag counts as a false positive (an upper bound: a few
    held-out names are themselves squat-like).  Budget: at most 0.2 % flagged.
(b) recall on known squats (``tests/data/known_squats.txt``, "squat target" per line, from
    published incidents) with the full shipped corpus.  A pair counts as found when the target
    is among the findings.  Pairs whose target is not in the corpus cannot be found without
    protecting the target and are reported separately.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from packaging.utils import canonicalize_name

from .corpus import load_corpus
from .typosquat import DEFAULT_REPORT_THRESHOLD, SquatFinding, TyposquatDetector

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = ROOT / "policies" / "facts" / "pypi-popular.json"
DEFAULT_SQUATS = ROOT / "tests" / "data" / "known_squats.txt"
FP_BUDGET = 0.002  # at most 0.2 % of held-out legitimate names flagged


@dataclass(frozen=True, slots=True)
class FalsePositives:
    corpus_size: int
    tested: int
    flagged: dict[str, list[SquatFinding]]

    @property
    def rate(self) -> float:
        return len(self.flagged) / self.tested if self.tested else 0.0


@dataclass(frozen=True, slots=True)
class Recall:
    corpus_size: int
    pairs: int  # all pairs in the file
    in_corpus: int  # pairs whose target is in the corpus (detectable)
    found: list[tuple[str, str, SquatFinding]]
    missed: list[tuple[str, str, list[SquatFinding]]]  # detectable pairs not found
    outside: list[tuple[str, str]]  # pairs whose target is not in the corpus

    @property
    def rate(self) -> float:
        return len(self.found) / self.in_corpus if self.in_corpus else 0.0


def split_corpus(
    ranks: Mapping[str, int], eval_size: int, holdout_end: int
) -> tuple[dict[str, int], list[str]]:
    """Corpus = ranks ``1..eval_size``; held out = ranks ``eval_size+1..holdout_end``."""
    corpus = {n: r for n, r in ranks.items() if r <= eval_size}
    held = [(r, n) for n, r in ranks.items() if eval_size < r <= holdout_end]
    held_out = [n for _, n in sorted(held)]
    return corpus, held_out


def false_positives(
    ranks: Mapping[str, int],
    *,
    eval_size: int = 12_000,
    holdout_end: int = 15_000,
    report_threshold: float = DEFAULT_REPORT_THRESHOLD,
) -> FalsePositives:
    corpus, held_out = split_corpus(ranks, eval_size, holdout_end)
    detector = TyposquatDetector(corpus, report_threshold=report_threshold)
    flagged = {name: found for name in held_out if (found := detector.check(name))}
    return FalsePositives(corpus_size=len(corpus), tested=len(held_out), flagged=flagged)


class KnownSquat(NamedTuple):
    squat: str
    target: str
    source: str  # the "# --- source ---" header the pair is listed under


def read_known_squats(path: Path) -> list[KnownSquat]:
    """``squat target`` pairs; ``#`` starts a comment; a ``# ---`` line names the source."""
    pairs = []
    source = ""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# ---"):
            source = line[5:].strip(" -")
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'squat target', got {line!r}")
        pairs.append(KnownSquat(parts[0], parts[1], source))
    return pairs


def recall(detector: TyposquatDetector, pairs: Iterable[KnownSquat]) -> Recall:
    found: list[tuple[str, str, SquatFinding]] = []
    missed: list[tuple[str, str, list[SquatFinding]]] = []
    outside: list[tuple[str, str]] = []
    total = 0
    for squat, target, _ in pairs:
        total += 1
        canon_target = canonicalize_name(target)
        if canon_target not in detector:
            outside.append((squat, target))
            continue
        findings = detector.check(squat)
        hit = next((f for f in findings if f.target == canon_target), None)
        if hit is None:
            missed.append((squat, target, findings))
        else:
            found.append((squat, target, hit))
    return Recall(
        corpus_size=len(detector),
        pairs=total,
        in_corpus=total - len(outside),
        found=found,
        missed=missed,
        outside=outside,
    )


def speed_sample(ranks: Mapping[str, int], pairs: Iterable[KnownSquat]) -> list[str]:
    """Names outside the corpus (so ``check`` does all its work): squats and altered names."""
    names = [p.squat for p in pairs]
    for name in sorted(ranks, key=ranks.__getitem__)[:3000]:
        names.append(name + "x" if len(name) % 2 else name[::-1])
    return [n for n in names if canonicalize_name(n) not in ranks]


def time_checks(detector: TyposquatDetector, names: Sequence[str], rounds: int = 3) -> float:
    """Median over ``rounds`` of the mean seconds per ``check`` call."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for name in names:
            detector.check(name)
        samples.append((time.perf_counter() - start) / max(len(names), 1))
    return statistics.median(samples)


def _fmt(findings: Sequence[SquatFinding]) -> str:
    return ", ".join(f"{f.target} ({f.method} {f.score:.2f})" for f in findings) or "-"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proxy.facts.evaluate", description=__doc__)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--squats", type=Path, default=DEFAULT_SQUATS)
    ap.add_argument("--eval-size", type=int, default=12_000, help="corpus ranks 1..N")
    ap.add_argument("--holdout-end", type=int, default=15_000, help="held out: N+1..this rank")
    ap.add_argument("--threshold", type=float, default=DEFAULT_REPORT_THRESHOLD)
    ap.add_argument("-v", "--verbose", action="store_true", help="list flags and misses")
    args = ap.parse_args(argv)

    ranks, info = load_corpus(args.corpus)
    print(f"corpus: {info.count} names, retrieved {info.retrieved}: {info.source}")

    t0 = time.perf_counter()
    print(f"report threshold {args.threshold} (tuned on the split 1..9,000 / 9,001..12,000)")
    splits = [("(a)", args.eval_size, args.holdout_end)]
    if (args.eval_size, args.holdout_end) == (12_000, 15_000):
        splits.append(("   tuning split:", 9_000, 12_000))
    worst = 0.0
    for label, eval_size, holdout_end in splits:
        fp = false_positives(
            ranks, eval_size=eval_size, holdout_end=holdout_end, report_threshold=args.threshold
        )
        worst = max(worst, fp.rate)
        print(
            f"{label} false positives: {len(fp.flagged)} of {fp.tested} held-out popular names "
            f"(ranks {eval_size + 1}..{holdout_end}) flagged against a "
            f"{fp.corpus_size}-name corpus = {fp.rate:.3%} "
            f"(budget {FP_BUDGET:.1%}: {'OK' if fp.rate <= FP_BUDGET else 'OVER'})"
        )
        if args.verbose:
            for name, findings in fp.flagged.items():
                print(f"    {name} -> {_fmt(findings)}")

    build = time.perf_counter()
    detector = TyposquatDetector(ranks, report_threshold=args.threshold)
    build = time.perf_counter() - build
    pairs = read_known_squats(args.squats)
    rec = recall(detector, pairs)
    print(
        f"(b) recall: {len(rec.found)} of {rec.in_corpus} known squats whose target is in the "
        f"{rec.corpus_size}-name corpus = {rec.rate:.1%}; "
        f"{len(rec.outside)} more pairs target names outside the corpus "
        f"({len(rec.found)} of {rec.pairs} = {len(rec.found) / max(rec.pairs, 1):.1%} overall)"
    )
    by_source: dict[str, list[KnownSquat]] = {}
    for pair in pairs:
        by_source.setdefault(pair.source, []).append(pair)
    for source, group in by_source.items():
        part = recall(detector, group)
        print(f"    {len(part.found):3d} / {part.in_corpus:3d}  {source[:80]}")
    if args.verbose:
        for squat, target, findings in rec.missed:
            print(f"    missed {squat} -> {target}: {_fmt(findings)}")
        for squat, target in rec.outside:
            print(f"    outside corpus {squat} -> {target}")

    sample = speed_sample(ranks, pairs)
    per_check = time_checks(detector, sample)
    print(
        f"speed: construction {build * 1000:.0f} ms for {len(detector)} names; "
        f"check {per_check * 1e6:.0f} us per name (mean over {len(sample)} names "
        "outside the corpus); "
        f"whole evaluation {time.perf_counter() - t0:.1f} s"
    )
    return 0 if worst <= FP_BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
