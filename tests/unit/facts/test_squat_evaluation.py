"""``airlock facts evaluate`` itself, and the weak (new-projects-only) relations it measures.

The evaluation is run end to end on a small corpus and hand-made sets, through the shipped
Rego policy, so each of its promises fails a test when broken: denials only (a warning is
not a catch), dev and held-out kept apart, defensive registrations not counted as
legitimate, baselines reported, and the weak relations never deny an old project.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from proxy.cli import main as airlock
from proxy.facts.compound import plural_forms, py_stripped
from proxy.facts.corpus import load_corpus
from proxy.facts.evaluate import DEFAULT_CORPUS
from proxy.facts.squat_baselines import guarddog_style, warehouse_style
from proxy.facts.squat_report import DEFAULT_POLICIES, evaluate, render
from proxy.facts.squatsets import SPLITS, split_of, synthetic
from proxy.facts.typosquat import TyposquatDetector
from proxy.pypi.facts import REPORT_FLOOR

DENY_SCORE, SUSPECT_SCORE = 0.8, 0.35  # the shipped policy's defaults
POPULAR = ["requests", "numpy", "cryptography", "factory-boy", "keras-applications", "stockfish"]
POPULAR += ["django-constance", "python-dateutil", "charset-normalizer", "beautifulsoup4"]


@pytest.fixture(scope="module")
def full() -> TyposquatDetector:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    return TyposquatDetector(ranks, report_threshold=REPORT_FLOOR)


@pytest.mark.parametrize(
    ("name", "target", "kind"),
    [
        ("pyfcatory-boy", "factory-boy", "affix-typo"),  # a hyphenated core after the affix
        ("python-reqeusts", "requests", "affix-typo"),
        ("keras-application", "keras-applications", "plural"),
        ("bueatifulsoup4", "beautifulsoup4", "distance-2-any"),
    ],
)
def test_weak_relations_hold_back_new_projects_only(
    full: TyposquatDetector, name: str, target: str, kind: str
) -> None:
    best = next(f for f in full.check(name) if f.target == target)
    assert best.kind == kind
    assert SUSPECT_SCORE <= best.score < DENY_SCORE  # new: denied; old: at most a warning


def test_name_forms() -> None:
    assert py_stripped("pyfcatory-boy") == ["fcatory-boy"]
    assert py_stripped("requests-python") == ["requests"]
    assert "copier" in plural_forms("copiers")
    assert "copiers" in plural_forms("copier")


def test_splits_are_fixed_halves() -> None:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    sides = [split_of(n) for n in ranks]
    assert set(sides) == set(SPLITS)
    assert 0.45 < sides.count("dev") / len(sides) < 0.55
    assert split_of("Requests") == split_of("requests")  # canonical


def test_baselines() -> None:
    ranks = {n: i for i, n in enumerate(POPULAR, start=1)}
    warehouse, guarddog = warehouse_style(ranks), guarddog_style(ranks)
    for squat in ("reqeusts", "requestss", "requets", "numpy2"):
        assert warehouse(squat), squat
    for squat in ("reqeusts", "rquests", "numpi", "py-numpy", "dateutil"):
        assert guarddog(squat), squat
    for name in ("requests", "flask", "numpy-financial-tools"):
        assert not warehouse(name), name
        assert not guarddog(name), name


def _fixture_sets(tmp: Path) -> tuple[Path, Path, Path]:
    corpus = tmp / "corpus.json"
    corpus.write_text(
        json.dumps(
            {
                "source": "test",
                "retrieved": "2026-11-29",
                "method": "by hand",
                "names": [[n, i] for i, n in enumerate(POPULAR, start=1)],
            }
        )
    )
    squats = tmp / "squats.txt"
    squats.write_text(
        "# --- test ---\nreqeusts requests\nnumpyy numpy\ncrytpography cryptography\n"
    )
    legit = tmp / "legit"
    legit.mkdir()
    # Old legitimate near-names: 'requests-oauth' is far; 'numpi' is 1 edit from rank 2.
    (legit / "legit_random.tsv").write_text("# name\tv\tmonth\nzebra-tools\t1.0\t2019-01\n")
    (legit / "legit_near.tsv").write_text(
        "# name\tv\tmonth\tnear\td\nnumpi\t0.1\t2018-03\tnumpy\t1\n"
        "crytography\t1.0\t2016-05\tcryptography\t1\n"
    )
    (legit / "defensive.tsv").write_text(
        "# name\tset\tsummary\ncrytography\tlegit_near\tI think you meant 'cryptography'\n"
    )
    return corpus, squats, legit


def test_evaluate_end_to_end(tmp_path: Path) -> None:
    corpus, squats, legit = _fixture_sets(tmp_path)
    report = asyncio.run(evaluate(corpus, DEFAULT_POLICIES, squats, legit, per_family=4))
    by_label = {row.label: row for row in report.squats}
    real = by_label["real historical squats"]
    published = sum(real.cells[f"published {s}"][0] for s in SPLITS)
    named = sum(real.cells[f"name {s}"][0] for s in SPLITS)
    assert sum(real.cells[f"published {s}"][1] for s in SPLITS) == 3
    assert published == 3  # all three are new, close look-alikes of popular names
    assert named <= published
    # split by TARGET: each pair is on exactly one side
    for row in report.squats:
        for scenario in ("published", "name"):
            assert sum(row.cells[f"{scenario} {s}"][1] for s in SPLITS) <= 4
    near = next(r for r in report.false_blocks if r.label.startswith("unpopular, within"))
    assert sum(t for _, t in near.cells.values()) == 1  # the defensive one is not counted
    defensive = next(r for r in report.false_blocks if r.label.startswith("defensive"))
    assert defensive.cells["dev"][1] == 1
    text = render(report, verbose=True)
    for word in ("dev", "held-out", "warehouse-style", "GuardDog-style", "held back"):
        assert word in text


def test_evaluate_counts_denials_not_warnings(tmp_path: Path) -> None:
    """'requestz' is suspect (new projects are denied) but below deny_score (old: a warning)."""
    corpus, squats, legit = _fixture_sets(tmp_path)
    squats.write_text("requestz requests\n")  # keyboard slip at the end: below deny_score
    report = asyncio.run(evaluate(corpus, DEFAULT_POLICIES, squats, legit, per_family=1))
    real = next(r for r in report.squats if r.label == "real historical squats")
    assert sum(real.cells[f"published {s}"][0] for s in SPLITS) == 1
    assert sum(real.cells[f"name {s}"][0] for s in SPLITS) == 0  # old page: warned, not denied


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, squats, legit = _fixture_sets(tmp_path)
    args = ["facts", "evaluate", "--corpus", str(corpus), "--squats", str(squats)]
    assert airlock([*args, "--legit", str(legit), "--per-family", "2"]) == 0
    out = capsys.readouterr().out
    assert "real historical squats" in out
    assert "name-only baselines" in out


def test_synthetic_targets_do_not_cross_splits() -> None:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    made = synthetic(ranks, per_family=20)
    for pairs in made.values():
        for squat, target in pairs:
            assert squat not in ranks
            assert target in ranks
