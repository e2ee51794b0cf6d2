"""Range and If-Range as RFC 9110 reads them, and resumes into unverified bytes."""

from __future__ import annotations

import pytest

from proxy.ranges import ByteRange, RangeChoice, Unsatisfiable, choose_range

SIZE = 1000
TAG = "ab" * 32


def pick(header: str | None, if_range: str | None = None, tainted: int = 0) -> RangeChoice:
    return choose_range(header, if_range, SIZE, TAG, tainted)


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-499", 0, 500),
        ("bytes=500-", 500, SIZE),
        ("bytes=999-", 999, SIZE),
        ("bytes=-1", 999, SIZE),
        ("bytes=-500", 500, SIZE),
        ("bytes=-5000", 0, SIZE),  # a suffix longer than the body is the whole body
        ("bytes=900-5000", 900, SIZE),  # last-pos past the end is clamped
        ("BYTES = 10 - 19", 10, 20),  # unit is case-insensitive, spaces around tokens
    ],
)
def test_satisfiable_single_ranges(header: str, start: int, stop: int) -> None:
    """Each form of a single range-spec selects exactly the bytes RFC 9110 says."""
    chosen = pick(header).range
    assert chosen is not None
    assert (chosen.start, chosen.stop) == (start, stop)


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=1000-", "bytes=1000-1001", "bytes=5000-"])
def test_unsatisfiable_ranges_are_416(header: str) -> None:
    """A zero-length suffix or a start at or past the end cannot be satisfied."""
    with pytest.raises(Unsatisfiable) as e:
        pick(header)
    assert e.value.size == SIZE


def test_any_range_of_an_empty_body_is_416() -> None:
    """An empty body has no byte to select, not even a suffix."""
    for header in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        with pytest.raises(Unsatisfiable):
            choose_range(header, None, 0, TAG)


@pytest.mark.parametrize(
    "header",
    [
        "items=0-1",  # another unit
        "bytes=abc",
        "bytes=-",
        "bytes=5-1",  # last before first: an invalid range-spec
        "bytes",
        "bytes=0-1,4-5",  # several ranges: no multipart answers, the whole body instead
        "bytes=-0,0-1",
    ],
)
def test_ignored_headers_give_the_whole_body(header: str) -> None:
    """Malformed, foreign-unit and multi-range headers are ignored: 200 with everything."""
    assert pick(header) == RangeChoice(None)


def test_no_header_is_the_whole_body() -> None:
    assert pick(None) == RangeChoice(None)


def test_if_range_must_match_the_strong_etag() -> None:
    """A stale, weak or date validator drops the Range; the current tag keeps it."""
    assert pick("bytes=10-", f'"{TAG}"').range == ByteRange(10, SIZE, open_ended=True)
    assert pick("bytes=10-", '"0000"') == RangeChoice(None)
    assert pick("bytes=10-", f'W/"{TAG}"') == RangeChoice(None)
    assert pick("bytes=10-", "Tue, 01 Dec 2026 10:00:00 GMT") == RangeChoice(None)
    assert choose_range("bytes=10-", f'"{TAG}"', SIZE, None).range is None  # nothing to match


def test_if_range_does_not_turn_an_unsatisfiable_range_into_a_body() -> None:
    """416 is decided from the range itself (the body it would select does not exist)."""
    with pytest.raises(Unsatisfiable):
        pick("bytes=-0", '"stale"')


def test_a_resume_into_unverified_bytes_gets_the_whole_body() -> None:
    """bytes=N- with N inside the tainted prefix could stitch: answered whole, and said so."""
    assert pick("bytes=1-", tainted=600) == RangeChoice(None, refused_resume=True)
    assert pick("bytes=600-", tainted=600) == RangeChoice(None, refused_resume=True)
    assert pick("bytes=600-", f'"{TAG}"', tainted=600) == RangeChoice(None, refused_resume=True)
    # past the tainted prefix the client's bytes all came from verified bodies
    assert pick("bytes=601-", tainted=600).range == ByteRange(601, SIZE, open_ended=True)
    # bounded slices and suffixes are reads, not continuations of a partial file
    assert pick("bytes=100-199", tainted=600).range == ByteRange(100, 200)
    assert pick("bytes=-10", tainted=600).range == ByteRange(990, SIZE)
    assert pick("bytes=0-", tainted=600).range == ByteRange(0, SIZE, open_ended=True)


def test_without_a_taint_record_every_continuation_is_a_range() -> None:
    """The default is 'nothing unverified was ever sent': bytes=1- is a plain resume."""
    assert choose_range("bytes=1-", None, SIZE, TAG).range == ByteRange(1, SIZE, open_ended=True)
