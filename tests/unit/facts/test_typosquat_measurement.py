"""The detector's measured quality: false-positive budget on held-out popular names, recall on
published squats, and the shipped corpus itself.  These fail if a scoring change trades the
budget for recall (or recall for nothing)."""

from __future__ import annotations

import re

import pytest

from proxy.facts import SquatFinding, TyposquatDetector, load_corpus
from proxy.facts.evaluate import (
    DEFAULT_CORPUS,
    DEFAULT_SQUATS,
    FP_BUDGET,
    KnownSquat,
    false_positives,
    read_known_squats,
    recall,
)

DOMAIN = re.compile(r"\b[a-z0-9-]+\.(?:org|com|io|net|dev|co)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def ranks() -> dict[str, int]:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    return ranks


@pytest.fixture(scope="module")
def squats() -> list[KnownSquat]:
    return read_known_squats(DEFAULT_SQUATS)


@pytest.mark.parametrize(
    ("eval_size", "holdout_end"),
    [
        (12_000, 15_000),  # the reported split
        (9_000, 12_000),  # the split the report threshold was tuned on
    ],
)
def test_false_positive_budget_on_held_out_popular_names(
    ranks: dict[str, int], eval_size: int, holdout_end: int
) -> None:
    """Popular legitimate projects just outside the corpus must almost never be flagged.

    Ranks ``eval_size+1..holdout_end`` are what an honest project looks like to the detector
    (not in its corpus, similar names around); the budget is 0.2 % of them.
    """
    fp = false_positives(ranks, eval_size=eval_size, holdout_end=holdout_end)
    assert fp.tested > 2_900
    assert fp.corpus_size > eval_size - 50
    assert set(fp.flagged).isdisjoint(n for n, r in ranks.items() if r <= eval_size)
    assert fp.rate <= FP_BUDGET, sorted(fp.flagged)


def test_recall_on_known_squats(ranks: dict[str, int], squats: list[KnownSquat]) -> None:
    """Floors, with the measured values at the time of writing in brackets.

    * overall >= 60 % of the pairs whose target is in the corpus (68 %).  For comparison,
      supply-chain.md section 2f measured warehouse-style rules at 9/19 of GuardDog's pairs
      while flagging 0.73-1.9 % of legitimate names, roughly ten times our budget;
    * GuardDog's own fixtures >= 9 of 18 detectable (9): what those rules reach, at a tenth
      of their false-positive rate;
    * swapped and doubled letters, which legitimate names almost never are: >= 95 % of such
      pairs in the malware sample (98 %).
    """
    detector = TyposquatDetector(ranks)
    result = recall(detector, squats)
    assert result.pairs >= 250
    assert result.in_corpus >= 250
    assert result.rate >= 0.60, [(s, t) for s, t, _ in result.missed]

    guarddog = [p for p in squats if p.source.startswith("GuardDog")]
    assert len(guarddog) == 18
    assert len(recall(detector, guarddog).found) >= 9

    swaps_and_doubles = [
        p
        for p in squats
        if p.source.startswith("pypi_malregistry")
        and any(f.method in ("adjacent-swap", "repeated-char") for f in _all(detector, p))
    ]
    assert len(swaps_and_doubles) >= 40
    assert recall(detector, swaps_and_doubles).rate >= 0.95


def _all(detector: TyposquatDetector, pair: KnownSquat) -> list[SquatFinding]:
    """Every finding for the pair's target, whatever its score."""
    loose = TyposquatDetector({pair.target: 1}, report_threshold=0.0)
    return list(loose.check(pair.squat)) if pair.target in detector else []


def test_known_squats_file_is_well_formed(squats: list[KnownSquat]) -> None:
    assert len(squats) >= 40
    assert all(s.source for s in squats), "every pair is listed under a '# ---' source header"
    assert len({(s.squat.lower(), s.target.lower()) for s in squats}) == len(squats)
    assert all(s.squat.lower() != s.target.lower() for s in squats)


def test_shipped_corpus() -> None:
    ranks, info = load_corpus(DEFAULT_CORPUS)
    assert info.count == len(ranks) >= 14_000
    assert sorted(ranks.values())[:3] == [1, 2, 3]
    assert max(ranks.values()) <= 15_000
    assert {"requests", "numpy", "boto3", "django"} <= set(ranks)
    assert "download" in info.source.lower()
    assert info.retrieved.year >= 2026
    for text in (info.source, info.method, DEFAULT_CORPUS.read_text(encoding="utf-8")[:2000]):
        assert not DOMAIN.search(text), "describe sources in words, without host names"
