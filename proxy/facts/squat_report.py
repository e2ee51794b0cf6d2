"""``airlock facts evaluate``: deny-level recall and false blocks of the typo-squat rule.

Every figure counts DENIALS by the ``typosquat`` rule only (warnings let installs through),
through the production decision path (:mod:`proxy.facts.policy_eval`): the shipped corpus,
the shipped policy folder, the facts the proxy computes, the Rego policy.

Every set is split in two by a hash of its key (:func:`squatsets.split_of`): *dev*, which
weights and thresholds may be tuned on, and *held-out*, which they must not be.  Synthetic
squats and real ones are split by their TARGET (no target is on both sides), legitimate
projects by their name.

Rows: synthetic squats per family and real historical squats (``tests/data/known_squats.txt``),
each *as published* (one release, first upload 29 days ago) and *name only* (an old page);
false blocks on legitimate unpopular projects with their catalogue history (random ones, and
ones within two edits of a popular name, ``tests/data/typosquat/``), without the defensive
registrations listed in ``defensive.tsv``; the corpus itself; how many legitimate projects
would be held back had they just been published; and two name-only baselines.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from ..pypi.facts import REPORT_FLOOR
from .corpus import load_corpus
from .evaluate import DEFAULT_CORPUS, DEFAULT_SQUATS, ROOT, read_known_squats
from .policy_eval import AS_PUBLISHED, NAME_ONLY, History, PolicyJudge, legit_history
from .squat_baselines import guarddog_style, warehouse_style
from .squatsets import SPLITS, read_defensive, read_legit, split_of, synthetic
from .typosquat import TyposquatDetector

DEFAULT_POLICIES = ROOT / "policies"
LEGIT = ROOT / "tests" / "data" / "typosquat"
Cell = tuple[int, int]  # (denied, total)


@dataclass(slots=True)
class Row:
    label: str
    cells: dict[str, Cell]  # "<scenario> <split>" -> (denied, total)
    examples: list[str] = field(default_factory=list)

    def rate(self, key: str) -> float:
        n, total = self.cells.get(key, (0, 0))
        return n / total if total else 0.0


@dataclass(slots=True)
class Report:
    squats: list[Row]  # keys "published dev", "published held-out", "name dev", ...
    false_blocks: list[Row]  # keys "dev", "held-out"
    baselines: list[Row]  # keys "<baseline> <split>"


def _cell(names: Iterable[str], hit: Callable[[str], bool]) -> Cell:
    got = [hit(n) for n in names]
    return sum(got), len(got)


async def _rate(judge: PolicyJudge, names: list[str], history: History) -> tuple[Cell, list[str]]:
    n, total, hits = await judge.rate(names, history)
    return (n, total), hits


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
    sets: list[tuple[str, list[tuple[str, str]]]] = list(
        synthetic(ranks, per_family=per_family).items()
    )
    real: list[tuple[str, str]] = [
        (canonicalize_name(p.squat), canonicalize_name(p.target))
        for p in read_known_squats(squats)
        if canonicalize_name(p.target) in ranks
    ]
    sets.append(("real historical squats", real))
    bases = {"warehouse-style": warehouse_style(ranks), "GuardDog-style": guarddog_style(ranks)}
    rows, baselines = [], []
    try:
        for label, pairs in sets:
            row = Row(label, {})
            base_row = Row(label, {})
            for split in SPLITS:
                names = [s for s, t in pairs if split_of(t) == split]
                for scenario, history in (("published", AS_PUBLISHED), ("name", NAME_ONLY)):
                    row.cells[f"{scenario} {split}"], hits = await _rate(judge, names, history)
                    row.examples += hits[:3]
                for base, check in bases.items():
                    base_row.cells[f"{base} {split}"] = _cell(names, check)
            rows.append(row)
            baselines.append(base_row)
        false_blocks = []
        defensive = read_defensive(legit / "defensive.tsv")
        for path, label in (
            (legit / "legit_random.tsv", "random unpopular projects"),
            (legit / "legit_near.tsv", "unpopular, within 2 edits of a popular name"),
        ):
            projects = [p for p in read_legit(path) if p.name not in defensive]
            row = Row(label, {})
            new = Row(f"  held back had they just been published: {label}", {})
            base_row = Row(f"legitimate: {label}", {})
            for split in SPLITS:
                part = [p for p in projects if split_of(p.name) == split]
                blocked = [
                    p.name for p in part if await judge.denied(p.name, legit_history(p.month))
                ]
                row.cells[split] = (len(blocked), len(part))
                row.examples += blocked
                new.cells[split], _ = await _rate(judge, [p.name for p in part], AS_PUBLISHED)
                for base, check in bases.items():
                    base_row.cells[f"{base} {split}"] = _cell((p.name for p in part), check)
            false_blocks += [row, new]
            baselines.append(base_row)
        held = [n for n in defensive if await judge.denied(n, NAME_ONLY)]
        false_blocks.append(
            Row("defensive/placeholder registrations (excluded; blocking is right)",
                {"dev": (len(held), len(defensive))}, held)
        )  # fmt: skip
        corpus_hits = [n for n in ranks if detector.check(n)]
        false_blocks.append(
            Row("the popular corpus itself", {"dev": (len(corpus_hits), len(ranks))})
        )
    finally:
        await judge.close()
    return Report(rows, false_blocks, baselines)


def _fmt(row: Row, keys: Iterable[str]) -> str:
    out = []
    for key in keys:
        n, total = row.cells.get(key, (0, 0))
        out.append(f"{n:4d}/{total:<4d} {row.rate(key):6.1%}" if total else " " * 16)
    return "  ".join(out)


def render(report: Report, *, verbose: bool = False) -> str:
    keys = [f"{s} {p}" for s in ("published", "name") for p in SPLITS]
    out = ["deny-level recall (typosquat denials only; warnings do not count):"]
    out.append(f"  {'':<40} {'as published':^34}  {'name only':^34}")
    out.append(f"  {'family':<40} " + "  ".join(f"{p:^16}" for _ in range(2) for p in SPLITS))
    for row in report.squats:
        out.append(f"  {row.label:<40} {_fmt(row, keys)}")
    out.append("false blocks (legitimate projects with their catalogue history):")
    out.append(f"  {'':<66} " + "  ".join(f"{p:^16}" for p in SPLITS))
    for row in report.false_blocks:
        out.append(f"  {row.label:<66} {_fmt(row, SPLITS)}")
        if verbose and row.examples:
            out.append("      " + ", ".join(row.examples[:40]))
    names = ("warehouse-style", "GuardDog-style")
    out.append("name-only baselines (every flag is a denial):")
    out.append(f"  {'':<44} " + "  ".join(f"{f'{b} {p}':^16}" for b in names for p in SPLITS))
    for row in report.baselines:
        out.append(f"  {row.label:<44} {_fmt(row, [f'{b} {p}' for b in names for p in SPLITS])}")
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
