"""Progress of long CLI work (``store fsck``, ``store gc``, ``osv import``, ``facts
refresh-popular``, ``bom``): one line on stderr, redrawn in place with ``\\r``, only when stderr
is a terminal.  Piped or redirected, it writes nothing; each command's own summary line stays
where it always went.

    with Progress("fsck", total=len(digests), unit="blobs") as progress:
        for digest in digests:
            ...
            progress.echo(f"BAD {digest}", sys.stdout)  # a report line, above the progress line
            progress.advance()
    print("fsck: ... summary", file=sys.stderr)  # the progress line is erased by now

Redraws are throttled by the injected clock (at most one per ``interval`` seconds) except the
first and the last (``done == total``), so a terminal always sees the start and the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TextIO, TypeVar

T = TypeVar("T")

INTERVAL = 0.2  # seconds between redraws: five a second


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """An in-place progress line; a context manager that erases the line when the work ends."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "items",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,  # default INTERVAL
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = sys.stderr if stream is None else stream
        self._clock = clock
        self._interval = INTERVAL if interval is None else interval
        self._live = is_terminal(self._stream)
        self._shown = 0  # length of the line on screen (0: none)
        self._last: float | None = None  # clock reading at the last redraw

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def text(self) -> str:
        if self.total is None:
            return f"{self.label}: {self.done} {self.unit}"
        percent = 100 * self.done // self.total if self.total else 100
        return f"{self.label}: {self.done}/{self.total} {self.unit} ({percent}%)"

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        finished = self.total is not None and self.done - n < self.total <= self.done
        if finished or self._last is None or now - self._last >= self._interval:
            self._draw(now)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield *items*, advancing once after each."""
        for item in items:
            yield item
            self.advance()

    def echo(self, line: str, file: TextIO) -> None:
        """Print *line* to *file* without mixing it into the progress line, then redraw."""
        self._erase()
        print(line, file=file, flush=True)
        self._draw()

    def close(self) -> None:
        """Erase the progress line (again: harmless); the summary printed next starts clean."""
        self._erase()
        self._live = False

    def _draw(self, now: float | None = None) -> None:
        if not self._live:
            return
        self._last = self._clock() if now is None else now
        line = self.text()  # never shorter than the one before: counts only go up
        self._stream.write(f"\r{line}")
        self._stream.flush()
        self._shown = len(line)

    def _erase(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._stream.flush()
            self._shown = 0
