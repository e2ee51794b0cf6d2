"""TyposquatDetector: each method finds its example, corpus names are never flagged, scores
weigh popularity, Unicode look-alikes are caught, and checks are fast."""

from __future__ import annotations

import pytest

from proxy.facts import SquatFinding, TyposquatDetector, load_corpus
from proxy.facts.evaluate import DEFAULT_CORPUS
from proxy.facts.typosquat import METHODS

# A small corpus of very popular names (ranks 1..20), so popularity does not get in the way.
SMALL = {
    name: rank
    for rank, name in enumerate(
        [
            "requests", "numpy", "colorama", "jellyfish", "django", "requests-toolbelt",
            "python-dateutil", "flask", "pymongo", "kafka-python", "fake-useragent",
            "matplotlib", "tensorflow", "pycparser", "setuptools", "httplib2", "h2",
            "beautifulsoup4", "pyyaml", "urllib3", "docutils",
        ],
        start=1,
    )
}  # fmt: skip


@pytest.fixture(scope="module")
def small() -> TyposquatDetector:
    return TyposquatDetector(SMALL)


@pytest.fixture(scope="module")
def full_ranks() -> dict[str, int]:
    ranks, _ = load_corpus(DEFAULT_CORPUS)
    return ranks


@pytest.fixture(scope="module")
def full(full_ranks: dict[str, int]) -> TyposquatDetector:
    return TyposquatDetector(full_ranks)


def top(detector: TyposquatDetector, name: str) -> SquatFinding:
    findings = detector.check(name)
    assert findings, f"{name!r} was not flagged"
    return findings[0]


@pytest.mark.parametrize(
    ("name", "target", "method"),
    [
        # PyPI's own collision rule: l/I/1 and o/0 folded, separators dropped
        ("jeIlyfish", "jellyfish", "ultranormalized"),
        ("c0lorama", "colorama", "ultranormalized"),
        ("fakeuseragent", "fake-useragent", "separator"),
        ("python_date.util", "python-dateutil", "separator"),
        # single edits
        ("colourama", "colorama", "edit-distance"),
        ("tenssorflow", "tensorflow", "repeated-char"),
        ("reqeusts", "requests", "adjacent-swap"),
        ("requestss", "requests", "repeated-char"),
        ("pycparserrr", "pycparser", "repeated-char"),
        ("reqests", "requests", "omitted-char"),
        ("matplotlb", "matplotlib", "omitted-char"),
        # word order and py/python affixes
        ("toolbelt-requests", "requests-toolbelt", "word-swap"),
        ("dateutil-python", "python-dateutil", "word-swap"),
        ("python-flask", "flask", "affix"),
        ("flask-python", "flask", "affix"),
        ("python-mongo", "pymongo", "affix"),
        ("pythonkafka", "kafka-python", "affix"),
        # version suffixes
        ("requests2", "requests", "version-suffix"),
        ("requests-v3", "requests", "version-suffix"),
        # ASCII look-alikes
        ("rnatplotlib", "matplotlib", "homoglyph"),
        ("5etuptools", "setuptools", "homoglyph"),
    ],
)
def test_each_method_detects_its_example(
    small: TyposquatDetector, name: str, target: str, method: str
) -> None:
    finding = top(small, name)
    assert (finding.target, finding.method) == (target, method)
    assert method in METHODS
    assert small.report_threshold <= finding.score <= 1.0


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("r\u0435quests", "requests"),  # Cyrillic small ie
        ("dj\u0430ngo", "django"),  # Cyrillic small a
        ("NUM\u0420Y", "numpy"),  # Cyrillic capital er
        ("d\u03bfcutils", "docutils"),  # Greek omicron
        ("\uff52\uff45\uff51\uff55\uff45\uff53\uff54\uff53", "requests"),  # full width
        ("requ\u200bests", "requests"),  # zero-width space
        ("fl\u0430sk", "flask"),
        ("m\u0430tpl\u043etlib", "matplotlib"),  # two Cyrillic letters
        ("python\u2010dateutil", "python-dateutil"),  # Unicode hyphen
        ("col\u00f6rama", "colorama"),  # diaeresis stripped
        ("r\u0435questss", "requests"),  # look-alike plus a doubled letter
    ],
)
def test_unicode_homoglyphs(small: TyposquatDetector, name: str, target: str) -> None:
    finding = top(small, name)
    assert finding.target == target
    assert finding.method == "homoglyph"
    assert finding.score >= 0.9


def test_corpus_and_protected_names_are_never_flagged(
    full: TyposquatDetector, full_ranks: dict[str, int]
) -> None:
    flagged = [name for name in full_ranks if full.check(name)]
    assert flagged == []
    # any spelling of a corpus name is the corpus name
    for spelling in ("Requests", "PYTHON_DATEUTIL", "python.dateutil", "Typing_Extensions"):
        assert full.check(spelling) == []
    detector = TyposquatDetector(SMALL, protected=["acme-billing", "reqeusts"])
    assert detector.check("acme_billing") == []
    assert detector.check("reqeusts") == []  # allow-listed: protected, so not a squat


def test_protected_names_are_watched_closely() -> None:
    detector = TyposquatDetector(SMALL, protected=["acme-internal-auth"])
    for name, method in [
        ("acme-internal-auht", "adjacent-swap"),
        ("acme-lnternal-auth", "ultranormalized"),
        ("acmeinternalauth", "separator"),
        ("internal-acme-auth", "word-swap"),
        ("python-acme-internal-auth", "affix"),
        ("acme-internal-auth2", "version-suffix"),
        ("acme-intrenal-auht", "edit-distance"),  # two edits: long protected names only
    ]:
        finding = top(detector, name)
        assert (finding.target, finding.method) == ("acme-internal-auth", method), name


def test_popularity_asymmetry() -> None:
    ranks = {"alpha-widget": 1, "beta-gadget": 500, "gamma-doohickey": 12_000}
    everything = TyposquatDetector(ranks, report_threshold=0.0)
    scores = {
        target: top(everything, squat).score
        for squat, target in [
            ("alpha-widgte", "alpha-widget"),
            ("beta-gadgte", "beta-gadget"),
            ("gamma-doohikcey", "gamma-doohickey"),
        ]
    }
    assert scores["alpha-widget"] > scores["beta-gadget"] > scores["gamma-doohickey"]
    default = TyposquatDetector(ranks)
    assert top(default, "alpha-widgte").target == "alpha-widget"
    assert default.check("gamma-doohikcey") == []  # a look-alike of a rarely used name
    protected = TyposquatDetector(ranks, protected=["delta-gizmo"], report_threshold=0.0)
    assert top(protected, "delta-gizmmo").score > top(protected, "alpha-widgett").score


def test_weak_relations_are_not_reported(small: TyposquatDetector) -> None:
    assert small.check("h3") == []  # short names collide by chance
    assert small.check("completely-unrelated-project") == []
    assert small.check("pyrequests") == []  # "py" + name: common for honest wrappers
    everything = TyposquatDetector(SMALL, report_threshold=0.0)
    assert top(everything, "h3").score < 0.3


def test_findings_are_sorted_and_serialisable(small: TyposquatDetector) -> None:
    detector = TyposquatDetector({"requests": 1, "request": 2}, report_threshold=0.0)
    findings = detector.check("requets")
    assert [f.score for f in findings] == sorted((f.score for f in findings), reverse=True)
    assert {f.target for f in findings} == {"requests", "request"}
    best = findings[0]
    assert best.to_input() == {
        "target": best.target,
        "method": best.method,
        "score": best.score,
        "rank": best.rank,
        "evidence": "1 edit (transposition) from 'request' (rank 2)",
    }
    assert (
        TyposquatDetector({}, ["acme-billing"]).check("acme-bililng")[0].to_input()["evidence"]
        == "1 edit (transposition) from 'acme-billing' (protected: internal or allow-listed)"
    )
    assert small.check("") == []
