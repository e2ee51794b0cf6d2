"""OSV severity: database severities, CVSS v3 base scores and bands."""

from __future__ import annotations

import pytest

from proxy.facts.osv import OsvIndex
from proxy.facts.osv_cvss import band, base_score, roundup, severity_of_vector
from proxy.facts.osv_import import severity_of


def test_severity_extraction(vulns: OsvIndex) -> None:
    # database_specific.severity wins over the vector (which alone would give LOW, 3.6)
    assert vulns.matches("jinja2", "1.0")[0].severity == "MODERATE"
    assert vulns.matches("urllib3", "1.24.1")[0].severity == "CRITICAL"  # CVSS 3.1 vector: 9.8
    assert vulns.matches("template-bridge", "2.0.0")[0].severity == "MODERATE"  # 6.1; v4 ignored
    assert vulns.matches("v4only", "1.0")[0].severity == "UNKNOWN"  # only a CVSS v4 vector
    assert vulns.matches("pyfiglet-color", "1.0")[0].severity is None  # malicious


def test_severity_labels_and_highest_vector() -> None:
    assert severity_of({"database_specific": {"severity": "medium"}}) == "MODERATE"
    assert severity_of({"database_specific": {"severity": "bogus"}}) == "UNKNOWN"
    assert severity_of({}) == "UNKNOWN"
    low = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"
    high = "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    doc = {
        "severity": [{"type": "CVSS_V3", "score": low}],
        "affected": [{"severity": [{"type": "CVSS_V3", "score": high}]}],
    }
    assert severity_of(doc) == "HIGH"


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", 3.7),
        ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:L/A:N", 3.6),
        ("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 9.8),  # temporal ignored
    ],
)
def test_cvss_v3_base_scores(vector: str, score: float) -> None:
    assert base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "AV:N/AC:L/Au:N/C:P/I:P/A:P",  # CVSS v2
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_cvss_rejects_other_vectors(vector: str) -> None:
    assert base_score(vector) is None
    assert severity_of_vector(vector) is None


def test_cvss_roundup_and_bands() -> None:
    assert roundup(4.02) == 4.1
    assert roundup(4.0) == 4.0
    assert roundup(4.000000000000001) == 4.0  # float noise does not bump the score
    assert [band(s) for s in (0.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0)] == [
        "LOW", "LOW", "MODERATE", "MODERATE", "HIGH", "HIGH", "CRITICAL", "CRITICAL",
    ]  # fmt: skip
