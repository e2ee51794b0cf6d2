"""Input validation shared by the admin API and the page: every bad value is a ValueError."""

from __future__ import annotations

import pytest

from proxy.admin.api import parse_approval, parse_digest, parse_filters, parse_limit


def test_parse_digest__normalises_case_and_rejects_the_rest() -> None:
    assert parse_digest("AB" * 32) == "ab" * 32
    for bad in ("", "ab" * 31, "ab" * 33, "zz" * 32, "../" + "a" * 61, "ab" * 31 + "a\x00"):
        with pytest.raises(ValueError, match="sha256"):
            parse_digest(bad)


def test_parse_approval() -> None:
    assert parse_approval("approve", "  ok  ") == ("approve", "ok")
    assert parse_approval("deny", "bad") == ("deny", "bad")
    with pytest.raises(ValueError, match="verdict"):
        parse_approval("APPROVE", "x")
    with pytest.raises(ValueError, match="verdict"):
        parse_approval(None, "x")
    for reason in (None, "", "   ", 3, ["x"]):
        with pytest.raises(ValueError, match="reason"):
            parse_approval("approve", reason)
    with pytest.raises(ValueError, match="at most"):
        parse_approval("approve", "x" * 2001)


def test_parse_limit() -> None:
    assert parse_limit("1") == 1
    assert parse_limit(" 1000 ") == 1000
    for bad in ("0", "1001", "-1", "abc", "", "1e3", "٣", "²", "99999999999"):
        with pytest.raises(ValueError, match="limit"):
            parse_limit(bad)


def test_parse_filters__empty_means_any() -> None:
    assert parse_filters({"client": " ci ", "rule": ""}) == {
        "client": "ci",
        "rule": None,
        "outcome": None,
    }
    with pytest.raises(ValueError, match="outcome"):
        parse_filters({"outcome": "x" * 201})
