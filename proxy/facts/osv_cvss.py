"""CVSS v3.x base score → qualitative severity band, for OSV records that carry only a vector.

Implements the base-score equations of the CVSS v3.1 specification (FIRST, section 7.1 and
Appendix A "Roundup"), which are the v3.0 equations with a float-safe round-up; the band
boundaries are the specification's (0.1-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0
critical).  "Medium" is spelled ``MODERATE`` here, as GitHub advisories spell it, so one
vocabulary reaches the policy.  Temporal and environmental metrics in a vector are accepted and
ignored (they do not change the base score).  CVSS v2 and v4 vectors are not scored.
"""

from __future__ import annotations

import math

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
_SCOPE = {"U", "C"}
_BASE = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")


def roundup(value: float) -> float:
    """The smallest number with one decimal place that is >= ``value`` (CVSS v3.1 Appendix A)."""
    int_input = round(value * 100_000)
    if int_input % 10_000 == 0:
        return int_input / 100_000.0
    return (math.floor(int_input / 10_000) + 1) / 10.0


def parse_vector(vector: str) -> dict[str, str] | None:
    """The metrics of a ``CVSS:3.0/...`` or ``CVSS:3.1/...`` vector, or None if it is not one."""
    parts = vector.strip().split("/")
    if len(parts) < 2 or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep or not key or not value or key in metrics:
            return None
        metrics[key] = value
    return metrics if all(k in metrics for k in _BASE) else None


def base_score(vector: str) -> float | None:
    """The CVSS v3.x base score of ``vector`` (0.0-10.0), or None if the vector is invalid."""
    m = parse_vector(vector)
    if m is None:
        return None
    scope = m["S"]
    pr_table = _PR_CHANGED if scope == "C" else _PR_UNCHANGED
    try:
        av, ac, pr, ui = _AV[m["AV"]], _AC[m["AC"]], pr_table[m["PR"]], _UI[m["UI"]]
        c, i, a = _CIA[m["C"]], _CIA[m["I"]], _CIA[m["A"]]
    except KeyError:
        return None
    if scope not in _SCOPE:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    changed_impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    impact = 6.42 * iss if scope == "U" else changed_impact
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    if scope == "U":
        return roundup(min(impact + exploitability, 10.0))
    return roundup(min(1.08 * (impact + exploitability), 10.0))


def band(score: float) -> str:
    """Qualitative rating of a base score: LOW, MODERATE, HIGH or CRITICAL (0.0 counts as LOW)."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MODERATE"
    return "LOW"


def severity_of_vector(vector: str) -> str | None:
    """The band of a CVSS v3.x vector, or None if it is not a valid v3.x vector."""
    score = base_score(vector)
    return None if score is None else band(score)
