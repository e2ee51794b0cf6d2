"""``airlock facts evaluate``: deny-level recall and false blocks of the typo-squat rule.

Every figure counts DENIALS by the ``typosquat`` rule only (warnings let installs through),
through the production decision path (:mod:`proxy.facts.policy_eval`): the shipped corpus,
the shipped policy folder, the facts the proxy computes, the Rego policy.

Rows: synthetic squats per family and real historical squats (``tests/data/known_squats.txt``),
each *as published* (one release, first upload 29 days ago) and *name only* (an old page);
false blocks on legitimate unpopular projects with their catalogue history (random ones, and
ones within two edits of a popular name, ``tests/data/typosquat/``); the corpus itself.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from ..pypi.facts import REPORT_FLOOR
from .corpus import load_corpus
from .evaluate import DEFAULT_CORPUS, DEFAULT_SQUATS, ROOT, read_known_squats
from .policy_eval import AS_PUBLISHED, NAME_ONLY, PolicyJudge, legit_history
from .squatsets import read_legit, synthetic
from .typosquat import TyposquatDetector

DEFAULT_POLICIES = ROOT / "policies"
LEGIT = ROOT / "tests" / "data" / "typosquat"


@dataclass(slots=True)
class Row:
    label: str
    denied: int
    total: int
    examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.denied / self.total if self.total else 0.0

    def line(self) -> str:
        return f"  {self.label:<44} {self.denied:5d} / {self.total:<5d} {self.rate:7.1%}"


@dataclass(slots=True)
class Report:
    squats: list[tuple[Row, Row]]  # (as published, name only) per family, then real squats
    false_blocks: list[Row]


async def evaluate(
    corpus: Path = DEFAULT_CORPUS,
    policies: Path = DEFAULT_POLICIES,
    squats: Path = DEFAULT_SQUATS,
    legit: Path = LEGIT,
    *,
    per_family: int = 200,
) -> Report:
    ranks, _ = load_corpus(corpus)
    detector = TyposquatDetector(ranks, report_threshold=REPORT_FLOOR)
    judge = PolicyJudge(detector, policies)
    try:
        pairs: list[tuple[str, list[str]]] = [
            (family, [s for s, _ in made])
            for family, made in synthetic(ranks, per_family=per_family).items()
        ]
        real: list[str] = [
            canonicalize_name(p.squat)
            for p in read_known_squats(squats)
            if canonicalize_name(p.target) in ranks
        ]
        pairs.append(("real historical squats", real))
        rows = []
        for label, names in pairs:
            both = []
            for history in (AS_PUBLISHED, NAME_ONLY):
                n, total, hits = await judge.rate(names, history)
                both.append(Row(label, n, total, hits[:5]))
            rows.append((both[0], both[1]))
        false_blocks = []
        for path, label in (
            (legit / "legit_random.tsv", "random unpopular projects"),
            (legit / "legit_near.tsv", "unpopular, within 2 edits of a popular name"),
        ):
            blocked, total = [], 0
            for project in read_legit(path):
                total += 1
                if await judge.denied(project.name, legit_history(project.month)):
                    blocked.append(project.name)
            false_blocks.append(Row(label, len(blocked), total, blocked))
        corpus_hits = [n for n in ranks if detector.check(n)]
        false_blocks.append(Row("the popular corpus itself", len(corpus_hits), len(ranks)))
    finally:
        await judge.close()
    return Report(rows, false_blocks)


def render(report: Report, *, verbose: bool = False) -> str:
    out = ["deny-level recall (typosquat denials only; warnings do not count):"]
    out.append(f"  {'family':<44} {'as published':>20}   {'name only':>20}")
    for pub, name in report.squats:
        out.append(
            f"  {pub.label:<44} {pub.denied:5d}/{pub.total:<5d} {pub.rate:7.1%}"
            f"   {name.denied:5d}/{name.total:<5d} {name.rate:7.1%}"
        )
    out.append("false blocks (legitimate projects with their catalogue history):")
    for row in report.false_blocks:
        out.append(row.line())
        if verbose and row.examples:
            out.append("      " + ", ".join(row.examples[:40]))
    return "\n".join(out)


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "evaluate",
        help="deny-level recall and false blocks of the typo-squat rule",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--policies", type=Path, default=DEFAULT_POLICIES)
    p.add_argument("--squats", type=Path, default=DEFAULT_SQUATS)
    p.add_argument("--legit", type=Path, default=LEGIT, help="folder of legit_*.tsv")
    p.add_argument("--per-family", type=int, default=200)
    p.add_argument("-v", "--verbose", action="store_true", help="list the false blocks")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    report = asyncio.run(
        evaluate(args.corpus, args.policies, args.squats, args.legit, per_family=args.per_family)
    )
    print(render(report, verbose=args.verbose))
    return 0
