"""The shared progress line: redrawn in place on a terminal, throttled by the clock, silent
when piped (issue #13)."""

from __future__ import annotations

import io

from proxy.progress import INTERVAL, Progress, is_terminal


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(tty: bool, total: int | None = 4) -> tuple[Progress, FakeStream, FakeClock]:
    stream, clock = FakeStream(tty), FakeClock()
    return Progress("fsck", total, unit="blobs", stream=stream, clock=clock), stream, clock


def test_piped_it_writes_nothing_at_all() -> None:
    progress, stream, clock = _progress(tty=False)
    out = io.StringIO()
    with progress:
        for _ in range(4):
            clock.now += 10
            progress.advance()
        progress.echo("BAD x", out)
    assert stream.getvalue() == ""
    assert out.getvalue() == "BAD x\n"  # report lines still go where they always went
    assert progress.done == 4


def test_on_a_terminal_the_line_is_redrawn_in_place_at_most_once_per_interval() -> None:
    progress, stream, clock = _progress(tty=True)
    with progress:
        assert stream.getvalue() == "\rfsck: 0/4 blobs (0%)"  # drawn at once
        progress.advance()  # the clock has not moved: not redrawn
        assert stream.getvalue() == "\rfsck: 0/4 blobs (0%)"
        clock.now += INTERVAL / 2
        progress.advance()  # still within the interval
        assert stream.getvalue() == "\rfsck: 0/4 blobs (0%)"
        clock.now = INTERVAL  # exactly one interval later
        progress.advance()  # a full interval since the last redraw
        assert stream.getvalue().endswith("\rfsck: 3/4 blobs (75%)")
        progress.advance()  # the last one is always shown, whatever the clock says
        assert stream.getvalue().endswith("\rfsck: 3/4 blobs (75%)\rfsck: 4/4 blobs (100%)")
        progress.advance()  # past the total: throttled again
        assert stream.getvalue().endswith("\rfsck: 4/4 blobs (100%)")
    last = "fsck: 4/4 blobs (100%)"
    assert stream.getvalue().endswith(f"{last}\r{' ' * len(last)}\r")  # erased at the end


def test_the_line_is_erased_once_and_a_closed_progress_draws_no_more() -> None:
    progress, stream, clock = _progress(tty=True)
    with progress:
        pass
    drawn = stream.getvalue()
    assert drawn == "\rfsck: 0/4 blobs (0%)\r" + " " * len("fsck: 0/4 blobs (0%)") + "\r"
    progress.close()
    clock.now += 10
    progress.advance()
    assert stream.getvalue() == drawn


def test_without_a_total_it_counts() -> None:
    stream, clock = FakeStream(True), FakeClock()
    with Progress("osv import", unit="files read", stream=stream, clock=clock) as progress:
        clock.now += INTERVAL
        progress.advance(7)
        assert stream.getvalue().endswith("\rosv import: 7 files read")


def test_an_empty_job_is_complete() -> None:
    progress, _, _ = _progress(tty=True, total=0)
    assert progress.text() == "fsck: 0/0 blobs (100%)"


def test_a_report_line_is_printed_above_the_progress_line() -> None:
    progress, stream, _ = _progress(tty=True)
    with progress:
        progress.echo("BAD x", stream)
        line = "fsck: 0/4 blobs (0%)"
        assert stream.getvalue() == f"\r{line}\r{' ' * len(line)}\rBAD x\n\r{line}"


def test_track_advances_after_each_item() -> None:
    progress, _, _ = _progress(tty=False)
    seen = []
    for item in progress.track("abc"):
        seen.append((item, progress.done))
    assert seen == [("a", 0), ("b", 1), ("c", 2)]
    assert progress.done == 3


def test_a_stream_that_cannot_tell_is_not_a_terminal() -> None:
    assert is_terminal(FakeStream(True))
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)  # isatty on a closed stream raises ValueError
    assert not is_terminal(object())  # type: ignore[arg-type]


def test_the_interval_can_be_chosen() -> None:
    stream, clock = FakeStream(True), FakeClock()
    with Progress("gc", 9, stream=stream, clock=clock, interval=10 * INTERVAL) as progress:
        clock.now = INTERVAL
        progress.advance()  # redrawn with the default interval, not with this one
        assert stream.getvalue() == "\rgc: 0/9 items (0%)"
